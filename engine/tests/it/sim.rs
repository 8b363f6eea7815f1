//! The Sim engine from the outside: determinism, validity of every result, stats that matter,
//! a golden battle pinned number for number, and refused requests.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

use hero_engine::{BattleEngine, EngineError, Sim, validate};
use hero_protocol::{BattleRequest, BattleResult, Fighter};
use hero_testkit::fixtures::fighter;
use proptest::prelude::*;

/// Sim's `generate` never awaits anything, so one poll with a no-op waker finishes it.
fn run<F: Future>(future: F) -> F::Output {
    let mut future = pin!(future);
    match future
        .as_mut()
        .poll(&mut Context::from_waker(Waker::noop()))
    {
        Poll::Ready(output) => output,
        Poll::Pending => panic!("the sim engine should never wait"),
    }
}

fn request(battle_id: &str, fighters: Option<Vec<Fighter>>, seed: Option<u64>) -> BattleRequest {
    BattleRequest {
        battle_id: battle_id.to_owned(),
        prompt: "fight!".to_owned(),
        seed,
        fighters,
    }
}

fn stat() -> impl Strategy<Value = u32> {
    prop_oneof![0..=100_u32, 0..=Sim::MAX_STAT]
}

prop_compose! {
    fn any_fighter(id: &'static str)(
        name in "\\PC{0,60}[a-zA-Z]\\PC{0,200}",
        strength in stat(),
        agility in stat(),
        luck in stat(),
        rarity in 1..=5_u32,
        skill_description in "\\PC{0,300}",
    ) -> Fighter {
        Fighter { id: id.to_owned(), name, strength, agility, luck, rarity, skill_description }
    }
}

fn pair() -> impl Strategy<Value = Vec<Fighter>> {
    (any_fighter("c-1"), any_fighter("c-2")).prop_map(|(a, b)| vec![a, b])
}

proptest! {
    #[test]
    fn same_fighters_and_seed_give_identical_results(fighters in pair(), seed in any::<u64>()) {
        let first = Sim.battle("b", &fighters, Some(seed)).unwrap();
        let second = run(Sim.generate(&request("other-id", Some(fighters.clone()), Some(seed))))
            .unwrap();
        prop_assert_eq!(&first, &second);
        prop_assert_eq!(
            serde_json::to_vec(&first).unwrap(),
            serde_json::to_vec(&second).unwrap()
        );
    }

    #[test]
    fn every_sim_result_passes_validation(fighters in pair(), seed in any::<u64>()) {
        let result = Sim.battle("b", &fighters, Some(seed)).unwrap();
        prop_assert_eq!(validate(&fighters, &result), Ok(()));
        prop_assert!(result.battle_log.len() <= 4 * Sim::MAX_ROUNDS as usize);
        prop_assert!(result.battle_log.iter().all(|e| e.round <= Sim::MAX_ROUNDS));
        let last = result.battle_log.last().unwrap();
        if last.target_hp == 0 {
            prop_assert_eq!(&last.actor, &result.winner);
        }
    }

    #[test]
    fn the_log_adds_up(fighters in pair(), seed in any::<u64>()) {
        let result = Sim.battle("b", &fighters, Some(seed)).unwrap();
        let mut hp: [Option<u32>; 2] = [None, None];
        for entry in &result.battle_log {
            let slot = usize::from(entry.target == fighters[1].id);
            if let Some(before) = hp[slot] {
                prop_assert_eq!(before - entry.damage, entry.target_hp);
            }
            prop_assert_eq!(entry.damage == 0, entry.action == "dodge");
            hp[slot] = Some(entry.target_hp);
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// If stats had no effect, A would win about half of the time and this would fail.
    #[test]
    fn clearly_stronger_fighters_win_a_clear_majority(
        strength in 0..=80_u32,
        agility in 0..=80_u32,
        luck in 0..=80_u32,
        rarity in 1..=5_u32,
        edge in 30..=60_u32,
    ) {
        let weak = fighter("weak", "Weakling", strength, agility, luck, rarity);
        let strong = fighter("strong", "Champion", strength + edge, agility + edge, luck + edge, rarity);
        let fighters = [weak, strong];
        let wins = (0..200_u64)
            .filter(|&seed| Sim.battle("b", &fighters, Some(seed)).unwrap().winner == "strong")
            .count();
        prop_assert!(wins > 140, "the stronger fighter won only {wins} of 200");
    }
}

#[test]
fn each_stat_on_its_own_makes_a_difference() {
    let base = fighter("base", "Base", 30, 30, 30, 3);
    let boosted = [
        fighter("up", "Strong", 90, 30, 30, 3),
        fighter("up", "Quick", 30, 90, 30, 3),
        fighter("up", "Lucky", 30, 30, 90, 3),
        fighter("up", "Rare", 30, 30, 30, 5),
    ];
    for up in boosted {
        let fighters = [base.clone(), up.clone()];
        let wins = (0..400_u64)
            .filter(|&seed| Sim.battle("b", &fighters, Some(seed)).unwrap().winner == "up")
            .count();
        assert!(wins > 220, "{} won only {wins} of 400", up.name);
    }
}

fn golden_fighters() -> Vec<Fighter> {
    let mut ayla = fighter("c-ayla", "Ayla the Swift", 42, 67, 30, 3);
    ayla.skill_description = "Whirlwind Step: a blur of blades that strikes from every side".into();
    let mut borin = fighter("c-borin", "Borin Ironhide", 70, 25, 18, 2);
    borin.skill_description = "Mountain Breaker".into();
    vec![ayla, borin]
}

/// Pinned literally: any change in the arithmetic, on any machine, breaks this test. If the
/// rules change on purpose, every node must upgrade together, and this test with them.
#[test]
fn golden_battle_is_pinned() {
    let result = Sim
        .battle("golden", &golden_fighters(), Some(20_240_601))
        .unwrap();
    assert_eq!(result.winner, "c-borin");
    assert_eq!(
        result.battle_description,
        "Borin Ironhide knocks out Ayla the Swift with a final blow in round 5."
    );
    let first = serde_json::to_string(&result.battle_log[..2]).unwrap();
    assert_eq!(
        first,
        concat!(
            r#"[{"round":1,"actor":"c-ayla","target":"c-borin","action":"skill","damage":112,"#,
            r#""target_hp":335,"text":"Ayla the Swift unleashes \"Whirlwind Step: a blur of "#,
            r#"blades that strikes from every sid…\" on Borin Ironhide for 112 damage! "#,
            r#"Borin Ironhide has 335 hp left."},"#,
            r#"{"round":1,"actor":"c-ayla","target":"c-borin","action":"attack","damage":45,"#,
            r#""target_hp":290,"text":"Ayla the Swift slashes at Borin Ironhide for 45 damage. "#,
            r#"Borin Ironhide has 290 hp left."}]"#,
        )
    );
    let steps: Vec<(&str, u32, u32)> = result
        .battle_log
        .iter()
        .map(|e| (e.action.as_str(), e.damage, e.target_hp))
        .collect();
    assert_eq!(
        steps,
        [
            ("skill", 112, 335),
            ("attack", 45, 290),
            ("critical", 190, 335),
            ("skill", 84, 206),
            ("attack", 63, 272),
            ("skill", 120, 86),
            ("critical", 180, 92),
            ("attack", 68, 18),
            ("attack", 59, 33),
            ("dodge", 0, 18),
            ("attack", 33, 0),
        ]
    );
}

#[test]
fn golden_seedless_battle_is_pinned() {
    let result = run(Sim.generate(&request("battle-0001", Some(golden_fighters()), None))).unwrap();
    assert_eq!(result.winner, "c-ayla");
    assert_eq!(result.battle_log.len(), 17);
    assert_eq!(
        result.battle_description,
        "Ayla the Swift knocks out Borin Ironhide with a critical hit in round 8."
    );
    assert_eq!(
        result.battle_log[1].text,
        "Borin Ironhide hammers Ayla the Swift for 50 damage. Ayla the Swift has 475 hp left."
    );
}

#[test]
fn without_a_seed_the_battle_id_decides() {
    let fighters = golden_fighters();
    let by_id = |id: &str| run(Sim.generate(&request(id, Some(fighters.clone()), None))).unwrap();
    assert_eq!(
        by_id("battle-7"),
        Sim.battle("battle-7", &fighters, None).unwrap()
    );
    assert_eq!(by_id("battle-7"), by_id("battle-7"));
    let results: Vec<BattleResult> = (0..10).map(|i| by_id(&format!("battle-{i}"))).collect();
    assert!(
        results.iter().any(|r| r != &results[0]),
        "battle ids should vary the outcome"
    );
}

#[test]
fn sim_reports_its_kind() {
    assert_eq!(Sim.kind(), "sim");
    assert_eq!(Sim.model(), None);
}

#[test]
fn bad_requests_are_refused_as_invalid() {
    let ok = golden_fighters();
    let with = |change: fn(&mut Vec<Fighter>)| {
        let mut fighters = ok.clone();
        change(&mut fighters);
        Some(fighters)
    };
    let cases: Vec<(&str, Option<Vec<Fighter>>)> = vec![
        ("no fighters", None),
        ("one fighter", with(|f| f.truncate(1))),
        (
            "three fighters",
            with(|f| f.push(fighter("c-3", "Third", 1, 1, 1, 1))),
        ),
        ("duplicate ids", with(|f| f[1].id = f[0].id.clone())),
        ("empty id", with(|f| f[0].id = " ".into())),
        (
            "oversize id",
            with(|f| f[0].id = "x".repeat(Sim::MAX_ID_BYTES + 1)),
        ),
        ("empty name", with(|f| f[1].name = String::new())),
        ("rarity 0", with(|f| f[0].rarity = 0)),
        ("rarity 6", with(|f| f[1].rarity = 6)),
        (
            "absurd strength",
            with(|f| f[0].strength = Sim::MAX_STAT + 1),
        ),
        ("absurd agility", with(|f| f[1].agility = u32::MAX)),
        ("absurd luck", with(|f| f[0].luck = Sim::MAX_STAT + 1)),
    ];
    for (case, fighters) in cases {
        let outcome = run(Sim.generate(&request("b", fighters, Some(1))));
        let Err(err) = outcome else {
            panic!("{case}: expected InvalidRequest, got a result");
        };
        assert!(
            matches!(err, EngineError::InvalidRequest(_)),
            "{case}: {err}"
        );
        assert!(err.is_client_error(), "{case}");
    }
    let max = with(|f| f[0].strength = Sim::MAX_STAT);
    assert!(
        run(Sim.generate(&request("b", max, Some(1)))).is_ok(),
        "the limit itself is fine"
    );
}
