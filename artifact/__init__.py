"""What export writes and the runtime reads: the artifact's contract.

Standard library only, so both sides import it without pulling in the other's
dependencies: the schema version and the vocabulary of kinds and roles
(`schema`), file hashing (`hashing`), the machine facts both record or check
(`machine`), and how the greedy token agreement a manifest records is counted
(`agreement`, which the benchmarks report too). graphs/README.md documents the
manifest built from these.
"""
