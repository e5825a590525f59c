"""kit: a Kaggle-style competition kit for image classification with ensembling."""
