"""Replay and backtest: what a rules or model change would have done, before it ships.

``replay`` re-publishes a time range of topics into shadow topics for a shadow worker;
``backtest`` scores a range offline with the stream's own rule and model code and
compares configurations against the ground truth.
"""
