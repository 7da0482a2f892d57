"""The capstone's language model, `tinytorch.core.tinygpt`, under the shorter name the design uses."""
from tinytorch.core.tinygpt import *  # noqa: F401,F403 -- this module *is* core.tinygpt's public names
