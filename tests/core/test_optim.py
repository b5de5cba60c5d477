"""The batched optimizers follow torch.optim's update rules on a single run, and Muon is MuonEnhanced."""

import pytest
import torch

from li2.optim import BatchOptimizer, lr_factor, newton_schulz5


def _quadratic_grads(params):
    """Gradients of a fixed smooth loss, so both optimizers see the same trajectory."""
    loss = sum((p.sin() * torch.arange(p.numel()).view_as(p).float().cos()).sum() + 0.5 * (p**2).sum() for p in params)
    return torch.autograd.grad(loss, params)


@pytest.mark.parametrize(
    "kind,cls,kwargs",
    [
        ("sgd", torch.optim.SGD, {"momentum": 0.9}),
        ("adam", torch.optim.Adam, {}),
        ("adamw", torch.optim.AdamW, {}),
    ],
)
def test_batched_optimizer_matches_torch_optim(kind, cls, kwargs):
    torch.manual_seed(0)
    init = {"W": torch.randn(6, 5), "Vt": torch.randn(5, 3)}
    lr, wd = 0.05, 0.01
    ref = [init["W"].clone().requires_grad_(), init["Vt"].clone().requires_grad_()]
    ref_opt = cls(ref, lr=lr, weight_decay=wd, **kwargs)
    mine = {k: v.clone().unsqueeze(0).requires_grad_() for k, v in init.items()}  # R = 1
    opt = BatchOptimizer(kind, mine, momentum=torch.tensor([0.9]))
    for _ in range(25):
        ref_opt.zero_grad()
        for p, g in zip(ref, _quadratic_grads(ref), strict=False):
            p.grad = g
        ref_opt.step()
        grads = _quadratic_grads([mine["W"], mine["Vt"]])
        opt.step({"W": grads[0], "Vt": grads[1]}, torch.tensor([lr]), torch.tensor([wd]))
    torch.testing.assert_close(mine["W"][0], ref[0].detach(), rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(mine["Vt"][0], ref[1].detach(), rtol=1e-5, atol=1e-6)


def test_runs_in_one_optimizer_use_their_own_lr_and_weight_decay():
    torch.manual_seed(1)
    base = torch.randn(4, 3)
    together = {"W": torch.stack([base, base]).requires_grad_()}
    opt = BatchOptimizer("adam", together, momentum=torch.tensor([0.9, 0.9]))
    alone = {"W": base.clone().unsqueeze(0).requires_grad_()}
    opt1 = BatchOptimizer("adam", alone, momentum=torch.tensor([0.9]))
    for _ in range(5):
        g = torch.ones_like(base)
        opt.step({"W": torch.stack([g, g])}, torch.tensor([0.1, 0.01]), torch.tensor([0.0, 0.5]))
        opt1.step({"W": g.unsqueeze(0)}, torch.tensor([0.01]), torch.tensor([0.5]))
    assert torch.equal(together["W"][1], alone["W"][0])
    assert not torch.allclose(together["W"][0], together["W"][1])


def _muon_enhanced_reference(p, grads, lr, wd):
    """MuonEnhanced as the paper code configures it (paper §5.3), written out on a (K, d) torch weight."""
    coeffs = [(4.01, -9.22, 5.80), (3.49, -6.38, 3.23), (3.34, -6.21, 3.20), (3.64, -7.48, 4.43), (3.46, -5.35, 2.85)]
    m = torch.zeros_like(p)
    for g in grads:
        p = p * (1 - lr * wd)
        m = 0.99 * m + 0.01 * g
        x = m.T if m.shape[0] > m.shape[1] else m
        x = x / (x.norm() + 1e-7)
        for a, b, c in coeffs:
            A = x @ x.T
            x = a * x + (b * A + c * A @ A) @ x
        o = x.T if m.shape[0] > m.shape[1] else x
        p = p - lr * o
    return p


def test_muon_matches_muon_enhanced_on_the_hidden_weights():
    torch.manual_seed(2)
    K, d = 12, 8  # torch weight (K, d), K > d: transposed inside
    weight = torch.randn(K, d)
    grads = [torch.randn(K, d) for _ in range(4)]
    expected = _muon_enhanced_reference(weight.clone(), grads, lr=0.02, wd=0.1)
    mine = {"W": weight.T.clone().unsqueeze(0).requires_grad_(), "Vt": torch.zeros(1, K, 3).requires_grad_()}
    opt = BatchOptimizer("muon", mine, momentum=torch.tensor([0.9]))
    for g in grads:
        opt.step({"W": g.T.unsqueeze(0), "Vt": torch.zeros(1, K, 3)}, torch.tensor([0.02]), torch.tensor([0.1]))
    torch.testing.assert_close(mine["W"][0].T, expected, rtol=1e-4, atol=1e-5)
    assert opt.rule("Vt") == "adam"


def test_newton_schulz_roughly_orthogonalises():
    g = torch.randn(1, 10, 30)
    x = newton_schulz5(g)[0]
    s = torch.linalg.svdvals(x)
    assert s.min() > 0.5 and s.max() < 1.3  # quintic NS pushes singular values near 1


def test_newton_schulz_of_a_tall_matrix_is_the_transpose_of_its_wide_twin():
    """A tall g (rows > columns) is orthogonalised through its transpose: the same polar factor."""
    g = torch.randn(2, 30, 10)
    tall = newton_schulz5(g)
    assert tall.shape == g.shape
    torch.testing.assert_close(tall, newton_schulz5(g.transpose(-2, -1)).transpose(-2, -1))
    s = torch.linalg.svdvals(tall)
    assert s.min() > 0.5 and s.max() < 1.3


def test_schedules_match_torch_lr_schedulers():
    p = [torch.zeros(1, requires_grad=True)]
    cases = [
        ({"schedule": "step", "step_size": 3, "gamma": 0.5}, lambda o: torch.optim.lr_scheduler.StepLR(o, 3, 0.5)),
        (
            {"schedule": "multistep", "milestones": [2, 5], "gamma": 0.1},
            lambda o: torch.optim.lr_scheduler.MultiStepLR(o, [2, 5], 0.1),
        ),
        ({"schedule": "exponential", "gamma": 0.9}, lambda o: torch.optim.lr_scheduler.ExponentialLR(o, 0.9)),
        ({"schedule": "cosine"}, lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 10)),
    ]
    for training, make in cases:
        training = {"lr": 1.0, "epochs": 10, **training}
        opt = torch.optim.SGD(p, lr=1.0)
        sched = make(opt)
        for epoch in range(10):
            assert lr_factor(training, epoch) == pytest.approx(opt.param_groups[0]["lr"], rel=1e-9, abs=1e-12)
            opt.step()
            sched.step()
