"""``--help`` lists a script's own flags (absl's are left to ``--helpfull``); ``--print_config``
prints the resolved config, one field a line with what it means, and exits 0 having run nothing."""

import pathlib

import pytest

from jaxseq.config import flat_fields, load_config
from jaxseq.config_docs import describe_config, field_meanings, meaning
from jaxseq import cli
from test_cli_errors import ROOT, load_script

SCRIPT_FLAGS = {  # script -> flags its --help must show (defined in the script or in jaxseq modules it uses)
    "run_palindrome": ["--config", "--out", "--plot_only", "--cluster", "--ray_address", "--print_config", "--tensorboard",
                       "--wandb"],
    "frontier": ["--config", "--out", "--table", "--overwrite", "--cluster", "--print_config"],
    "train_textgen": ["--config", "--out", "--resume", "--data", "--print_config", "--tensorboard"],
    "generate": ["--run", "--config", "--prompt", "--seed", "--temperature"],
    "atlas": ["--config", "--out", "--plot_only", "--beside", "--cluster", "--print_config", "--tensorboard"],
}
CONFIGS = ["palindrome.py", "palindrome.py:full", "frontier.py", "frontier.py:long", "frontier.py:classic", "grad_norms.py",
           "optimizers.py", "textgen.py", "gcn.py", "gat.py", "atlas.py"]


@pytest.fixture
def run(capsys, monkeypatch):
    """``run(script, *args) -> (exit code, stdout, stderr)`` of the script's main, in this process."""
    monkeypatch.chdir(ROOT)

    def run_script(script, *args):
        module = load_script(script)
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            cli.run_main(module.main, [script, *args])
        captured = capsys.readouterr()
        return exited.value.code, captured.out, captured.err

    return run_script


@pytest.mark.parametrize("script", SCRIPT_FLAGS)
def test_help_shows_the_scripts_own_flags_and_not_absls(run, script):
    code, out, err = run(script, "--help")
    assert code == 0, err
    shown = {line.split(":")[0].strip().replace("--[no]", "--") for line in out.splitlines() if line.startswith("  --")}
    assert set(SCRIPT_FLAGS[script]) <= shown, sorted(shown)
    assert not shown & {"--verbosity", "--logtostderr", "--pdb_post_mortem", "--only_check_args"}, sorted(shown)


def test_print_config_prints_the_resolved_config_with_meanings_and_runs_nothing(run, tmp_path):
    code, out, err = run("train_gnn", "--config=configs/gat.py:quick", "--config.optim.lr=0.02", "--print_config",
                         f"--out={tmp_path / 'out'}")
    out = out.splitlines()
    assert code in (0, None) and not err, err
    assert out[0] == "# --config=configs/gat.py:quick"
    config = load_config("configs/gat.py:quick")
    assert len(out) == 1 + len(flat_fields(config))
    lines = {line.split(" = ")[0]: line for line in out[1:]}
    assert lines["optim.lr"].split("#")[0].strip() == "optim.lr = 0.02"  # the override applied
    assert lines["train.num_epochs"].startswith(f"train.num_epochs = {config.train.num_epochs!r}")
    assert lines["optim.l2"].endswith("# added to the loss as l2 * sum(w^2) / 2")  # the config file's own comment
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("spec", CONFIGS)
def test_every_config_field_has_a_meaning(spec):
    """A field added to a config needs a comment beside (or above) the line that sets it."""
    path = ROOT / "configs" / spec.split(":")[0]
    meanings = field_meanings(path)
    missing = [f for f in flat_fields(load_config(str(path) + spec[len(path.name):])) if not meaning(f, meanings)]
    assert not missing, f"configs/{spec}: give these fields a comment where they are set: {missing}"


def test_meanings_come_from_the_comment_where_a_field_is_set(tmp_path):
    path = tmp_path / "mine.py"
    path.write_text('''"""A config."""
import ml_collections


def get_config(arg=None):
    config = ml_collections.ConfigDict()
    config.train = ml_collections.ConfigDict(dict(
        num_steps=10,  # budget. More words after the sentence.
        # the width
        # of a layer
        width=3,
    ))
    config.speed = 2.0  # how fast
    if arg == "fast":
        config.speed = 9.0  # what a variant sets is no definition
    return config
''')
    assert field_meanings(path) == {"train.num_steps": "budget.", "train.width": "the width of a layer", "speed": "how fast"}
    text = describe_config(load_config(f"{path}:fast"), path, "mine")
    assert [[part.strip() for part in line.split("  # ")] for line in text.splitlines()] == [
        ["# mine"], ["speed = 9.0", "how fast"], ["train.num_steps = 10", "budget."],
        ["train.width = 3", "the width of a layer"]]
    assert len({line.index("  # ") for line in text.splitlines()[1:]}) == 1  # meanings in one column
    assert meaning("variants.x.train.num_steps", field_meanings(path)) == "budget."  # a section.field at the end
    assert pathlib.Path(path).read_text().count("budget") == 1
