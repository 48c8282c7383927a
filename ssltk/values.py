"""Types for free-form option values read from configuration files.

A value typed ``Any`` lets jsonargparse resolve a ``class_path`` inside it, which imports that module while the
file is parsed (the hardening issue's config payload). Free-form options are therefore typed as plain data: JSON
scalars and lists of them, which no parser can turn into an import.
"""
from typing import Dict, List, Optional, Union

Scalar = Union[bool, int, float, str, None]
#: an option's value: a scalar or a list of scalars (an optimizer's ``betas``, a milestone list)
OptionValue = Union[Scalar, List[Scalar]]
#: a mapping of free-form options (``--trainer.optimizer_args``)
Options = Optional[Dict[str, OptionValue]]
