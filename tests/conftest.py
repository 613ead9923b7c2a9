import os
import sys

# tests import their NumPy references as plain modules from this directory
sys.path.insert(0, os.path.dirname(__file__))
