"""Competition data: a Kaggle-style folder -> validated labels, image files, test ids and submission format.

    labels.py       which column(s) hold the labels, separators, the (n, C) label matrix
    folders.py      where the image files are (images/, train/ + test/, path column, channel files, ImageFolder)
    images.py       the one decoder: validation, the cache and prediction read pixels through it
    sample.py       the submission format of sample_submission.csv
    competition.py  load_competition: all of the above, every problem a DataError naming file and ids
"""
from kit.data.competition import EMBEDDED_DATA, Competition, load_competition
from kit.data.errors import DataError

__all__ = ["EMBEDDED_DATA", "Competition", "DataError", "load_competition"]
