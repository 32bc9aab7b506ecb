__version__ = "0.1.0"

# fastai 2.8 still decorates a few functions with `torch.jit.script`, which torch >= 2.10 reports
# as deprecated, once per process, with a path of the reader's machine. Not the reader's concern:
# silence just that message for everything that imports the course's package.
import warnings as _warnings
_warnings.filterwarnings('ignore', message=r'`torch\.jit\.script` is deprecated', category=FutureWarning)
