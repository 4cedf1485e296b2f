import argparse

import pytest

from t2i.cli.args import interval


def test_cfg_interval_parses_two_ordered_times():
    assert interval("0.2,0.9") == (0.2, 0.9)
    assert interval("0,1") == (0.0, 1.0)
    for bad in ("0.9,0.2", "0.5", "a,b", "-0.1,0.5", "0.2,1.5"):
        with pytest.raises(argparse.ArgumentTypeError):
            interval(bad)
