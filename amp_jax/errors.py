"""The one exception type for bad user input, raised at the boundary before anything compiles."""


class InputError(ValueError):
    """A config, character or motion file is wrong. The message names the file and the problem."""
