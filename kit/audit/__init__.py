"""kit.audit: know the data before training. `python -m kit.audit [--data DIR] [--run NAME]` writes
`audit/<data>/` (report.html and CSVs that a person and kit.cv can use).

    inputs.py      the competition read as kit.cv reads it, thumbnails through the kit's cache, file facts
    hashes.py      exact pixel digests and perceptual (DCT) hashes
    features.py    simple image statistics and a pixel embedding; embeddings.py: a run's penultimate features
    duplicates.py  duplicate pairs (exact / perceptual hash / embedding), their clusters -> groups.csv
    outliers.py    isolation forest -> outliers.csv, exclude.csv
    shift.py       adversarial validation (train vs test) and per-feature KS statistics
    label_noise.py confident-learning style label issues of a finished run
    report.py      report.html; cli.py the command
"""
