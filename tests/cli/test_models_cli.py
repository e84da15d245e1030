"""`visionzoo models`."""

from visionzoo.cli.main import main


def test_models_table_lists_params_size_and_tags(capsys):
    assert main(["models", "test_vit", "vit_betwixt*"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].split()[:3] == ["model", "params", "(M)"]
    rows = {line.split()[0]: line.split() for line in out[2:]}
    assert rows["test_vit"][1:3] == ["0.37", "160x160"]
    assert rows["vit_betwixt_patch16_reg4_gap_256"][1:4] == ["60.40", "256x256", "sbb2_e200_in12k_ft_in1k,"]


def test_models_pretrained_counts_each_tags_head(capsys):
    assert main(["models", "vit_so400m_patch14_siglip_378*", "--pretrained"]) == 0
    rows = {line.split()[0]: line.split() for line in capsys.readouterr().out.splitlines()[2:]}
    assert rows["vit_so400m_patch14_siglip_378.v2_webli"][1] == "428.23"
    assert rows["vit_so400m_patch14_siglip_378.webli_ft_in1k"][1] == "429.38"  # + the 1000-class head


def test_no_match_is_a_one_line_error(capsys):
    assert main(["models", "nothing*"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "no model matches 'nothing*'" in err


def test_models_pretrained_shows_the_best_measured_top1_and_no_report_data(capsys):
    assert main(["models", "mobilenetv3_large_150d.ra4*", "--pretrained"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert "2024" not in lines[0]  # the hand-copied page's figures belong to `visionzoo report`
    row = lines[2].split()
    assert row[1] == "14.62" and row[-2] == "@"
