"""numpy's functions as they were before any student code ran, for the grader's helpers in the child.

The student's code shares this process and may replace numpy's attributes (`np.array = ...`, only while the
grader's helpers run, say) to blind what the helpers read: a network snapshot, a sample's key, an answer's arrays.
`np` here is a copy of numpy's namespace taken when the child's package loads: replacing `numpy.array` later
changes the student's numpy, not this one. (numpy's own internals bind their helpers in their own modules.)"""

import types

import numpy

np = types.SimpleNamespace(**vars(numpy))
