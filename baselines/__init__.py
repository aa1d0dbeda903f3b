"""Baseline policies (BC, LSTM-GMM, IBC, BET), installed as ``dpbench.baselines``."""
