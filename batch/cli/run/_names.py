"""The built-in mappers' names, apart from their code: the parser of every subcommand
shows them in `batch run`'s help, and importing _builtins for that loaded numpy into
`batch exec` (about 0.1 s of its start-up here, `python -X importtime`)."""

ARRAY_MAPPERS = ("sum", "count", "min", "max", "mean", "std", "var", "stats", "histogram",
                 "sort")
TEXT_MAPPERS = ("lines", "words", "wordfreq", "grep")
FILE_MAPPERS = ("sha256", "size")
NAMES = ARRAY_MAPPERS + TEXT_MAPPERS + FILE_MAPPERS
