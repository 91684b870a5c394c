import pytest

from bot.cli import main
from bot.config import load_settings, settings_as_toml
from bot.errors import ConfigError


def test_defaults_are_documented_and_usable():
    s = load_settings()
    assert s.knowledge.embedding_model == "bundled:embedder"
    assert s.generator.model == "bundled:smollm2"
    assert 0 < s.answer.generate_threshold < s.answer.answer_threshold <= 1
    text = settings_as_toml(s)
    assert "[knowledge]" in text and "answer_threshold" in text


def test_toml_file_then_environment_override(tmp_path, monkeypatch):
    cfg = tmp_path / "supportbot.toml"
    cfg.write_text('[knowledge]\ncollection = "acme-kb"\n[answer]\nanswer_threshold = 0.9\n')
    s = load_settings(cfg)
    assert s.knowledge.collection == "acme-kb" and s.answer.answer_threshold == 0.9
    monkeypatch.setenv("SUPPORTBOT_ANSWER__ANSWER_THRESHOLD", "0.7")
    s = load_settings(cfg)
    assert s.answer.answer_threshold == 0.7 and s.knowledge.collection == "acme-kb"


def test_config_found_via_env_and_cwd(tmp_path, monkeypatch):
    cfg = tmp_path / "other.toml"
    cfg.write_text('[generator]\nmax_new_tokens = 42\n')
    monkeypatch.setenv("SUPPORTBOT_CONFIG", str(cfg))
    assert load_settings().generator.max_new_tokens == 42
    monkeypatch.delenv("SUPPORTBOT_CONFIG")
    (tmp_path / "supportbot.toml").write_text('[generator]\nmax_new_tokens = 43\n')
    assert load_settings().generator.max_new_tokens == 43  # cwd is tmp_path (conftest)


def test_unknown_key_names_key_and_file(tmp_path):
    cfg = tmp_path / "supportbot.toml"
    cfg.write_text('[knowledge]\nembeding_model = "x"\n')
    with pytest.raises(ConfigError) as e:
        load_settings(cfg)
    assert "knowledge.embeding_model" in str(e.value) and str(cfg) in str(e.value)


def test_wrong_type_names_key_and_file(tmp_path):
    cfg = tmp_path / "supportbot.toml"
    cfg.write_text('[answer]\nanswer_threshold = "high"\n')
    with pytest.raises(ConfigError) as e:
        load_settings(cfg)
    assert "answer.answer_threshold" in str(e.value) and str(cfg) in str(e.value)


def test_bad_environment_is_named(monkeypatch):
    monkeypatch.setenv("SUPPORTBOT_ANSWER__ANSWER_THRESHOLD", "lots")
    with pytest.raises(ConfigError, match="SUPPORTBOT_ANSWER__ANSWER_THRESHOLD"):
        load_settings()
    monkeypatch.delenv("SUPPORTBOT_ANSWER__ANSWER_THRESHOLD")
    monkeypatch.setenv("SUPPORTBOT_KNOWLEGDE__PATH", "/tmp/x")
    with pytest.raises(ConfigError, match="SUPPORTBOT_KNOWLEGDE__PATH"):
        load_settings()


def test_invalid_toml_syntax(tmp_path):
    cfg = tmp_path / "supportbot.toml"
    cfg.write_text("[knowledge\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg)


def test_cli_config_errors_are_one_line_exit_2(tmp_path, capsys):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[escalation]\nenabled = 3.5\n")
    assert main(["--config", str(cfg), "config"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "escalation.enabled" in err and "\n" not in err
    assert main(["--config", str(tmp_path / "missing.toml"), "config"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_config_files_that_cannot_be_read_and_bad_json_in_the_environment_are_one_line(tmp_path, monkeypatch,
                                                                                        capsys):
    latin1 = tmp_path / "latin1.toml"
    latin1.write_bytes('[answer]\nfallback_message = "Désolé"\n'.encode("latin-1"))
    with pytest.raises(ConfigError, match=r"latin1.toml, line 2: not UTF-8"):
        load_settings(latin1)
    with pytest.raises(ConfigError, match="is a directory"):
        load_settings(tmp_path)
    monkeypatch.setenv("SUPPORTBOT_SERVER__API_KEYS", "[not json")
    with pytest.raises(ConfigError, match=r"SUPPORTBOT_SERVER__API_KEYS\): not valid JSON"):
        load_settings()
    for argv in (["config"], ["--config", str(latin1), "config"], ["--config", str(tmp_path), "config"]):
        assert main(argv) == 2
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and "\n" not in err and "Traceback" not in err


def test_cli_config_prints_effective_settings(tmp_path, capsys):
    cfg = tmp_path / "supportbot.toml"
    cfg.write_text('[knowledge]\ncollection = "printed-kb"\n')
    assert main(["--config", str(cfg), "config"]) == 0
    text = capsys.readouterr().out
    assert 'collection = "printed-kb"' in text and str(cfg) in text


def test_printed_settings_load_back_unchanged(tmp_path):
    """`supportbot config` prints TOML that loads back to the same settings, dicts and unset values included."""
    from bot.config import Settings

    cfg = tmp_path / "custom.toml"  # not ./supportbot.toml: the defaults are compared below
    cfg.write_text('[escalation]\nsensitive_topics = ["fraud", "billing"]\n'
                   '[escalation.topics]\nbilling = ["I was charged twice", "wrong amount \\"billed\\""]\n'
                   '[privacy]\nextra_patterns = { customer_id = \'CUST-\\d{6}\' }\n'
                   '[knowledge]\ncollection = "round-trip"\n'
                   '[[knowledge.sources]]\nname = "help"\nurl = "https://help.example.com/"\nexclude = ["/community"]\n'
                   '[[knowledge.sources]]\npath = "faq/"\n', encoding="utf-8")
    settings = load_settings(cfg)
    printed = tmp_path / "printed.toml"
    printed.write_text(settings_as_toml(settings), encoding="utf-8")
    again = load_settings(printed)
    assert again.model_dump(mode="json") == settings.model_dump(mode="json")
    defaults = tmp_path / "defaults.toml"
    defaults.write_text(settings_as_toml(Settings()), encoding="utf-8")
    assert load_settings(defaults).model_dump(mode="json") == load_settings().model_dump(mode="json")
