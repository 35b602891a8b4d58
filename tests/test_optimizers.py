"""The optimizer registry: each update against the slides' form, per-copy rates, frozen copies,
and the config, help and memory estimate derived from the registry."""

import numpy as np
import pytest

from nnexp.config import schema as config
from nnexp.core import OPTIMIZERS, Hyperparams, make_optimizer, reference, train
from nnexp.run import memory
from test_data import assert_group_is_the_registry
from test_training import fresh, problem

REFERENCE = {"gd": reference.gd, "sgd": reference.gd}
REFERENCE |= {"momentum": reference.momentum, "nesterov": reference.nesterov}


def options_of(name, beta):
    return {key: beta for key in OPTIMIZERS[name].cls.options}


@pytest.mark.parametrize("batch_size", [None, 16])
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_each_optimizer_follows_the_slides_over_several_steps(name, batch_size):
    """Eight epochs of the fast path equal eight of the slides' updates (reference.py), with the
    same mini-batch order: the copy's generator permutes the rows every epoch."""
    (X, y), _ = problem()
    lr, beta, lam, epochs = 0.3, 0.8, 0.01, 8
    W1, W2, _ = fresh([0])
    hp = Hyperparams(
        lr=lr, epochs=epochs, l2=lam, batch_size=batch_size, optimizer=name,
        options=options_of(name, beta),
    )  # fmt: skip
    result = train(W1.copy(), W2.copy(), (X, y), None, hp, [np.random.default_rng(9)])
    update = REFERENCE[name]
    extra = (beta,) if OPTIMIZERS[name].cls.options else ()
    order_rng = np.random.default_rng(9)
    V = [np.zeros_like(W1[0]), np.zeros_like(W2[0])]
    W = [W1[0], W2[0]]
    for _ in range(epochs):
        order = np.arange(len(X)) if batch_size is None else order_rng.permutation(len(X))
        for start in range(0, len(X), batch_size or len(X)):
            rows = order[start : start + (batch_size or len(X))]
            _, dW1, dW2 = reference.cost_and_gradients(X[rows], y[rows], *W, lam, 1 / len(rows))
            (W[0], V[0]), (W[1], V[1]) = (
                update(W[i], dW, V[i], lr, *extra) for i, dW in enumerate((dW1, dW2))
            )
    assert np.allclose(result.W1[0], W[0], rtol=1e-12, atol=1e-14)
    assert np.allclose(result.W2[0], W[1], rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("batch_size", [None, 16])
@pytest.mark.parametrize("name", ["momentum", "nesterov"])
def test_per_copy_lr_and_momentum_equal_each_copy_alone(name, batch_size):
    """Copies with their own lr, β and λ, one diverging (frozen with its velocity while the
    others go on), each equal the copy trained alone with those floats, bit for bit."""
    lrs, betas, l2s = [0.3, 0.1, 1e307, 0.05], [0.9, 0.0, 0.5, 0.99], [1e-3, 0.0, 0.0, 0.02]
    train_set, test_set = problem(n=64)
    seeds = [4, 5, 6, 7]
    common = dict(epochs=15, batch_size=batch_size, reduction="sum", optimizer=name)
    W1, W2, rngs = fresh(seeds)
    hp = Hyperparams(lr=lrs, l2=l2s, options={"momentum": betas}, **common)
    batched = train(W1, W2, train_set, test_set, hp, rngs)
    assert [at is not None for at in batched.diverged_at] == [False, False, True, False]
    for copy, seed in enumerate(seeds):
        W1s, W2s, rngs_s = fresh([seed])
        hp_alone = Hyperparams(
            lr=lrs[copy], l2=l2s[copy], options={"momentum": betas[copy]}, **common
        )
        alone = train(W1s, W2s, train_set, test_set, hp_alone, rngs_s)
        assert np.array_equal(batched.W1[copy], alone.W1[0])
        assert np.array_equal(batched.W2[copy], alone.W2[0])
        recorded = len(alone.history.epochs)
        assert np.array_equal(
            np.asarray(batched.history.test_cost)[:recorded, copy],
            np.asarray(alone.history.test_cost)[:, 0],
            equal_nan=True,
        )


@pytest.mark.parametrize("batch_size", [None, 16])
def test_momentum_with_beta_zero_is_gradient_descent(batch_size):
    train_set, test_set = problem()
    results = []
    for name, options in [("gd", {}), ("momentum", {"momentum": 0.0})]:
        W1, W2, rngs = fresh([1, 2])
        hp = Hyperparams(lr=0.4, epochs=10, batch_size=batch_size, optimizer=name, options=options)
        results.append(train(W1, W2, train_set, test_set, hp, rngs))
    assert np.array_equal(results[0].W1, results[1].W1)
    assert np.array_equal(results[0].W2, results[1].W2)


def test_momentum_moves_further_than_gd_at_the_same_lr():
    """The velocity accumulates: after 20 epochs at lr 0.1, β 0.9 has lowered the cost more."""
    train_set, _ = problem()
    final = {}
    for name, options in [("gd", {}), ("momentum", {"momentum": 0.9})]:
        W1, W2, rngs = fresh([0])
        hp = Hyperparams(lr=0.1, epochs=20, optimizer=name, options=options)
        final[name] = train(W1, W2, train_set, None, hp, rngs).history.train_cost[-1][0]
    assert final["momentum"] < final["gd"]


def test_unknown_optimizer_or_options_are_refused():
    weights = np.zeros((1, 5))
    with pytest.raises(ValueError, match="unknown optimizer 'adam'; use one of gd, sgd"):
        make_optimizer("adam", weights, 0.1, {})
    with pytest.raises(ValueError, match="takes the options \\['momentum'\\], not \\[\\]"):
        make_optimizer("momentum", weights, 0.1, {})


def test_the_registry_the_optim_group_and_the_schemas_name_the_same_optimizers():
    """Every optimizer has its conf/optim/NAME.yaml built on its own schema, which has a key per
    option of its class."""
    assert_group_is_the_registry("optim", OPTIMIZERS, config.OPTIM_SCHEMAS)
    for name, schema in config.OPTIM_SCHEMAS.items():
        assert set(OPTIMIZERS[name].cls.options) <= set(schema.__dataclass_fields__)


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("optim.momentum=1.0", "optim.momentum=1.0 must be ≥ 0.0 and < 1.0"),
        ("optim.momentum=-0.1", "optim.momentum=-0.1 must be ≥ 0.0 and < 1.0"),
        ("optim.name=adam", "optim.name=adam is not an optimizer nnexp knows; choose one of gd"),
    ],
)
def test_bad_optimizer_settings_are_one_clear_line(override, message):
    from hydra import compose, initialize_config_dir

    from nnexp.errors import UserError

    config.register_schemas()
    with initialize_config_dir(str(config.CONF_DIR), version_base="1.3"):
        cfg = compose("config", overrides=["optim=nesterov", override])
    with pytest.raises(UserError, match=message.replace("(", "\\(")):
        config.check(cfg)


def test_the_memory_estimate_counts_the_velocity_buffers():
    sizes = (100, 10, 50, 2, 8, None, 8)
    weights = 8 * (10 * 50 + 50 * 2) * 8
    gd, nesterov = (
        memory.training_bytes(*sizes, OPTIMIZERS[n].cls.state) for n in ("gd", "nesterov")
    )
    assert nesterov - gd == 2 * weights
