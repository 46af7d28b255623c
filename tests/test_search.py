"""Search: distributions, drawing members, successive halving's and PBT's selection, copies."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jaxmlp import search
from jaxmlp.errors import ConfigError


def test_ranges_parse_with_their_scale():
    lr = search.parse_distribution("lr", "1e-3..3e-1:log")
    assert lr == search.Range("lr", 0.001, 0.3, log=True)
    assert search.parse_distribution("dropout", "0..0.5") == search.Range("dropout", 0.0, 0.5)
    batch = search.parse_distribution("batch_size", "16..256:log")
    assert batch.integer and (batch.low, batch.high) == (16, 256)


def test_choices_parse_as_the_grid_parses_lists():
    assert search.parse_distribution("optimizer", "sgd,adam:choice").values == ("sgd", "adam")
    sizes = search.parse_distribution("sizes", "784,30,10;784,100,10:choice")
    assert sizes.values == ((784, 30, 10), (784, 100, 10))
    assert search.parse_distribution("lr", "0.1,0.3:choice").values == (0.1, 0.3)


@pytest.mark.parametrize(
    "name, text, message",
    [
        ("lr", "0.3..0.001", "lr has the range '0.3..0.001', whose minimum is not below"),
        ("lr", "0.1..0.1", "lr has the range '0.1..0.1', whose minimum is not below"),
        ("weight_decay", "0..1e-3:log", "weight_decay has the log range '0..1e-3:log', which must"),
        ("lr", "-1..1", "lr must be positive, got -1"),
        ("dropout", "0..1", "dropout must be in [0, 1), got 1"),
        ("lr", "a..b", "lr has 'a' in 'a..b', which is not a number"),
        ("batch_size", "8..16.5", "batch_size has '16.5' in '8..16.5', which is not a whole"),
        ("lr", "0.1..0.2:lin", "lr has '0.2:lin' in '0.1..0.2:lin', which is not a number"),
        ("lr", "..0.2", "lr has '' in '..0.2', which is not a number"),
        ("optimizer", "sgd..adam", "optimizer takes a list of choices (a,b:choice), not a range"),
        ("sizes", "1..3", "sizes takes a list of choices"),
        ("optimizer", "sgd,rmsprop:choice", "optimizer must be one of sgd, momentum, adam, adamw"),
        ("lr", "0.1:choice", "lr needs at least two values to choose from"),
        ("dataset", "mnist,fashion-mnist:choice", "dataset takes no distribution"),
    ],
)
def test_bad_distributions_are_one_line_naming_the_setting(name, text, message):
    with pytest.raises(ConfigError) as caught:
        search.parse_distribution(name, text)
    assert str(caught.value).startswith(message) and "\n" not in str(caught.value)
    assert caught.value.exit_code == 2 and caught.value.setting == name


def test_the_search_space_is_split_from_grid_lists_and_fixed_values():
    given_flags = {"lr": "1e-3..1:log", "dropout": "0,0.2", "epochs": 3, "seed": "0-1"}
    distributions, rest = search.split_search_space(given_flags)
    assert list(distributions) == ["lr"]
    assert rest == {"dropout": "0,0.2", "epochs": 3, "seed": "0-1"}


@given(low=st.floats(1e-6, 1.0), span=st.floats(1.01, 1e4), seed=st.integers(0, 2**32 - 1))
@settings(max_examples=50, deadline=None)
def test_draws_stay_inside_their_range(low, span, seed):
    rng = np.random.default_rng(seed)
    for distribution in (
        search.Range("lr", low, low * span, log=True),
        search.Range("lr", low, low * span),
    ):
        values = distribution.draw(rng, 20)
        assert all(distribution.low <= value <= distribution.high for value in values)
        assert all(
            value == search.rounded(value) or value in (distribution.low, distribution.high)
            for value in values
        )


def test_integer_draws_reach_both_ends_and_nothing_else():
    drawn = search.Range("batch_size", 2, 5).draw(np.random.default_rng(0), 400)
    assert set(drawn) == {2, 3, 4, 5} and all(isinstance(value, int) for value in drawn)
    logged = search.Range("batch_size", 16, 256, log=True).draw(np.random.default_rng(0), 4000)
    assert min(logged) == 16 and max(logged) == 256
    below_64 = sum(value < 64 for value in logged) / len(logged)
    assert 0.45 < below_64 < 0.55, "log-uniform: [16, 64) is half of [16, 256] in log scale"


def test_log_uniform_spreads_over_decades():
    drawn = np.array(search.Range("lr", 1e-4, 1.0, log=True).draw(np.random.default_rng(1), 8000))
    per_decade = np.histogram(np.log10(drawn), bins=[-4, -3, -2, -1, 0])[0] / drawn.size
    assert np.all(np.abs(per_decade - 0.25) < 0.03), per_decade


def test_members_are_drawn_reproducibly_and_crossed_with_the_grid():
    distributions = {
        "lr": search.parse_distribution("lr", "1e-3..1:log"),
        "dropout": search.parse_distribution("dropout", "0..0.5"),
    }
    axes = {"seed": [0, 1]}
    fixed = {"epochs": 2, "sizes": "16,8,3"}
    members = search.draw_members("seed", distributions, axes, fixed, runs=3, search_seed=7)
    again = search.draw_members("seed", dict(reversed(distributions.items())), axes, fixed, 3, 7)
    other = search.draw_members("seed", distributions, axes, fixed, runs=3, search_seed=8)
    assert members == again, "the same seed draws the same members, whatever the flags' order"
    assert [m.lr for m in members] != [m.lr for m in other]
    assert len(members) == 6 and [m.seed for m in members] == [0, 1] * 3
    assert all(a.lr == b.lr and a.dropout == b.dropout for a, b in zip(members[::2], members[1::2]))
    assert len({m.lr for m in members}) == 3 and all(m.sizes == (16, 8, 3) for m in members)


def test_choices_are_drawn_uniformly():
    choice = search.Choice("optimizer", ("sgd", "adam", "momentum"))
    drawn = choice.draw(np.random.default_rng(0), 3000)
    assert all(abs(drawn.count(value) / 3000 - 1 / 3) < 0.03 for value in choice.values)


@pytest.mark.parametrize(
    "method, flags, message",
    [
        ("beam", {}, "search must be one of grid, random, halving, pbt, got 'beam'"),
        ("halving", {"eta": 1}, "eta must be at least 2, got 1"),
        ("halving", {"rungs": "6,2"}, "rungs must be strictly increasing, got 6,2"),
        ("halving", {"rungs": "2,2"}, "rungs must be strictly increasing, got 2,2"),
        ("halving", {"rungs": "2,18"}, "rungs must lie from epoch 1 to below --epochs 18"),
        ("halving", {"rungs": "0,6"}, "rungs must lie from epoch 1 to below --epochs 18"),
        ("halving", {"rungs": "two"}, "rungs must be whole epochs such as 2,6, got 'two'"),
        ("pbt", {"truncation": 0.0}, "truncation must be in (0, 0.5], got 0"),
        ("pbt", {"truncation": 0.6}, "truncation must be in (0, 0.5], got 0.6"),
        ("pbt", {"resample": 1.5}, "resample must be in [0, 1], got 1.5"),
        ("pbt", {"perturb": "0.8,-1"}, "perturb must be positive factors, got 0.8,-1"),
        ("pbt", {"perturb": "x"}, "perturb must be factors such as 0.8,1.2, got 'x'"),
        ("pbt", {"ready": 18}, "ready must be in [1, 18) (below --epochs), got 18"),
        ("grid", {"eta": 3}, "eta applies only to --search halving"),
        ("random", {"truncation": 0.2}, "truncation applies only to --search pbt"),
        ("random", {"runs": 0}, "runs must be at least 1, got 0"),
        ("random", {"search_seed": -1}, "search_seed must be in [0, 4294967296), got -1"),
    ],
)
def test_bad_search_arguments_are_one_line(method, flags, message):
    lr = {"lr": search.Range("lr", 1e-3, 1.0, log=True)}
    arguments = {"distributions": lr, "runs": 4, **flags}
    with pytest.raises(ConfigError) as caught:
        search.resolve_search(method, 18, **arguments)
    assert str(caught.value).startswith(message) and caught.value.exit_code == 2


def test_search_flags_must_fit_the_distributions():
    lr = {"lr": search.Range("lr", 1e-3, 1.0, log=True)}
    with pytest.raises(ConfigError, match="a distribution needs --search random, halving or pbt"):
        search.resolve_search("grid", 5, distributions=lr, runs=4)
    with pytest.raises(ConfigError, match="runs is needed with a distribution"):
        search.resolve_search("random", 5, distributions=lr)
    with pytest.raises(ConfigError, match="runs draws members from distributions"):
        search.resolve_search("halving", 5, runs=4)
    with pytest.raises(ConfigError, match="search_seed seeds the draws from distributions"):
        search.resolve_search("halving", 5, search_seed=3)
    with pytest.raises(ConfigError, match="search random needs a setting given as a distribution"):
        search.resolve_search("random", 5)
    with pytest.raises(ConfigError, match="search pbt needs a setting given as a distribution"):
        search.resolve_search("pbt", 5)


def test_plans_take_their_defaults():
    assert search.resolve_search("grid", 5) == search.SearchPlan()
    halving = search.resolve_search("halving", 18)
    assert (halving.eta, halving.rungs) == (3, (2, 6))
    lr = {"lr": search.Range("lr", 1e-3, 1.0, log=True)}
    pbt = search.resolve_search("pbt", 10, distributions=lr, runs=8, ready=3, search_seed=5)
    assert (pbt.ready, pbt.truncation, pbt.perturb, pbt.resample) == (3, 0.2, (0.8, 1.2), 0.25)
    assert pbt.search_seed == 5 and pbt.exploit_epochs(10) == [3, 6, 9]
    with pytest.raises(ConfigError, match="rungs leave no rung below --epochs 1"):
        search.resolve_search("halving", 1)


def test_default_rungs_divide_the_epochs_by_powers_of_eta():
    assert search.default_rungs(18, 3) == (2, 6)
    assert search.default_rungs(27, 3) == (1, 3, 9)
    assert search.default_rungs(8, 2) == (1, 2, 4)
    assert search.default_rungs(2, 3) == ()


def test_ranking_puts_ties_by_index_and_diverged_members_last():
    assert search.ranking([0.5, 0.9, None, 0.9, math.nan, 0.1]) == [1, 3, 0, 5, 2, 4]


def test_halving_keeps_the_top_ceiling_n_over_eta_in_member_order():
    accuracies = [0.30, 0.80, 0.55, 0.90, 0.10, 0.85, 0.70]
    assert search.survivors(accuracies, 3) == [1, 3, 5], "⌈7/3⌉ = 3: the top three"
    assert search.survivors(accuracies, 2) == [1, 3, 5, 6]
    assert search.survivors([0.5, 0.5, 0.5], 3) == [0], "a tie goes to the lower index"
    assert search.survivors([None, 0.2], 2) == [1], "a diverged member never survives a live one"
    assert search.survivors([0.4], 3) == [0], "a rung never stops everyone"


def test_halving_budget_counts_each_stage():
    assert search.halving_network_epochs(27, (1, 3, 9), 27, 3) == 27 * 1 + 9 * 2 + 3 * 6 + 1 * 18
    assert search.halving_network_epochs(10, (2,), 6, 3) == 10 * 2 + 4 * 4


def test_pbt_quantiles_round_up_but_never_pass_half():
    assert [search.quantile_size(n, 0.2) for n in (1, 2, 4, 5, 10, 11)] == [0, 1, 1, 1, 2, 3]
    assert search.quantile_size(10, 0.5) == 5 and search.quantile_size(3, 0.5) == 1


def test_truncation_copies_the_bottom_from_the_top():
    accuracies = [0.5, 0.9, 0.1, 0.7, 0.3, 0.8, 0.2, 0.6, 0.4, 0.0]
    sources = search.truncation_sources(accuracies, 0.2, np.random.default_rng(3))
    bottom, top = {9, 2}, {1, 5}
    assert all(sources[i] == i for i in range(10) if i not in bottom)
    assert all(int(sources[i]) in top for i in bottom)
    again = search.truncation_sources(accuracies, 0.2, np.random.default_rng(3))
    assert np.array_equal(sources, again)
    donors = [
        tuple(search.truncation_sources(accuracies, 0.2, np.random.default_rng(seed))[[9, 2]])
        for seed in range(40)
    ]
    assert {donor for pair in donors for donor in pair} == top, "each top member may be copied"


def test_explore_changes_only_the_copies_searched_values_within_range():
    distributions = {
        "lr": search.Range("lr", 0.01, 0.5, log=True),
        "dropout": search.Range("dropout", 0.0, 0.3),
    }
    values = [{"lr": 0.1 * (i + 1) / 2, "dropout": 0.1, "momentum": 0.9} for i in range(4)]
    sources = [0, 0, 2, 2]
    explored = search.explore(
        values, sources, distributions, (0.8, 1.2), 0.0, np.random.default_rng(0)
    )
    assert explored[0] == values[0] and explored[2] == values[2]
    for index in (1, 3):
        source = values[sources[index]]
        assert explored[index]["momentum"] == 0.9, "values outside the search space are copied"
        ratio = explored[index]["lr"] / source["lr"]
        assert min(abs(ratio - 0.8), abs(ratio - 1.2)) < 1e-3
        assert explored[index]["dropout"] in (search.rounded(0.08), search.rounded(0.12))
    clipped = search.explore(
        [{"lr": 0.5}, {"lr": 0.5}],
        [0, 0],
        {"lr": distributions["lr"]},
        (1.2,),
        0.0,
        np.random.default_rng(0),
    )
    assert clipped[1]["lr"] == 0.5, "a factor does not leave the range"
    resampled = search.explore(
        values, sources, distributions, (0.8, 1.2), 1.0, np.random.default_rng(0)
    )
    assert all(0.01 <= resampled[i]["lr"] <= 0.5 for i in (1, 3))
    assert resampled[1]["lr"] / values[0]["lr"] not in (0.8, 1.2)


def test_explore_is_reproducible_from_the_seed_and_epoch():
    distributions = {"lr": search.Range("lr", 0.01, 0.5, log=True)}
    values = [{"lr": 0.1}, {"lr": 0.2}, {"lr": 0.3}]

    def step(seed, epoch):
        rng = search.exploit_rng(seed, epoch)
        sources = search.truncation_sources([0.9, 0.1, 0.5], 0.5, rng)
        return search.explore(values, sources, distributions, (0.8, 1.2), 0.25, rng)

    assert step(4, 2) == step(4, 2)
    assert any(step(4, epoch) != step(4, 2) for epoch in range(3, 12))


def test_choices_perturb_to_a_neighbour():
    choice = search.Choice("lr", (0.01, 0.1, 1.0))
    rng = np.random.default_rng(0)
    assert choice.perturb(0.1, 1.2, rng) == 1.0 and choice.perturb(0.1, 0.8, rng) == 0.01
    assert choice.perturb(1.0, 1.2, rng) == 1.0 and choice.perturb(0.1, 1.0, rng) == 0.1


def test_integer_values_perturb_to_whole_numbers():
    batch = search.Range("batch_size", 8, 64)
    assert batch.perturb(20, 1.2, None) == 24 and batch.perturb(60, 1.2, None) == 64


def test_exploits_record_who_copied_whom():
    before = [{"lr": 0.1}, {"lr": 0.2}, {"lr": 0.3}]
    after = [{"lr": 0.1}, {"lr": 0.12}, {"lr": 0.3}]
    records = search.exploits_of(4, [0, 0, 2], before, after)
    assert [record.to_dict() for record in records] == [
        {
            "event": "exploit",
            "epoch": 4,
            "member": 1,
            "source": 0,
            "before": {"lr": 0.2},
            "inherited": {"lr": 0.1},
            "values": {"lr": 0.12},
        }
    ]


def test_a_members_schedule_follows_its_copies_back():
    values_per_epoch = [
        [{"lr": 0.1}, {"lr": 0.2}, {"lr": 0.3}],  # epoch 1
        [{"lr": 0.1}, {"lr": 0.08}, {"lr": 0.3}],  # epoch 2: member 1 copied member 0 after 1
        [{"lr": 0.1}, {"lr": 0.08}, {"lr": 0.096}],  # epoch 3: member 2 copied member 1 after 2
    ]
    sources_after = {1: [0, 0, 2], 2: [0, 1, 1]}
    schedule = search.inherited(values_per_epoch, sources_after, 2)
    assert schedule == [{"lr": 0.1}, {"lr": 0.08}, {"lr": 0.096}]
    assert search.inherited(values_per_epoch, sources_after, 0) == [{"lr": 0.1}] * 3
