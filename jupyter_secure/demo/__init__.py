"""Demo room: the synthetic data set and the workspace behind ``jupyter secure lab``."""

from .dataset import generate_patients as generate_patients
from .workspace import DemoWorkspace as DemoWorkspace
from .workspace import prepare as prepare

__all__ = ["DemoWorkspace", "generate_patients", "prepare"]
