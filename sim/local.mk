# sim/: the memory-hierarchy simulator (issue 4).
