"""MoViNet-A4: minimovinet equals the official model in every variant (see official_cases.py)."""
import pytest

from official_cases import VARIANTS, check_equals_official, check_checkpoint_reader_bit_exact


@pytest.mark.parametrize("variant", VARIANTS)
def test_equals_official(variant, tmp_path):
    check_equals_official("a4", variant, tmp_path)


@pytest.mark.parametrize("variant", ["base", "stream"])
def test_checkpoint_reader_bit_exact(variant, tmp_path):
    check_checkpoint_reader_bit_exact("a4", variant, tmp_path)
