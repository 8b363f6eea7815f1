//! The Sim engine's rules of combat: hit points, initiative, dodges, critical hits and skills,
//! played out round by round with integer arithmetic only.

use hero_protocol::{BattleLogEntry, Fighter};

use super::narration;
use super::rng::Dice;

/// A fighter during a battle: the snapshot plus what it has left.
pub(crate) struct Combatant<'a> {
    pub(crate) fighter: &'a Fighter,
    pub(crate) hp: u32,
    /// How the log lines quote the fighter: name and skill, shortened once per battle.
    pub(crate) quoted: narration::Quoted,
}

impl<'a> Combatant<'a> {
    fn new(fighter: &'a Fighter) -> Self {
        let base = 200
            + 2 * u64::from(fighter.strength)
            + 2 * u64::from(fighter.agility)
            + 2 * u64::from(fighter.luck);
        let hp = base * rarity_percent(fighter) / 100;
        Self {
            fighter,
            hp: u32::try_from(hp).unwrap_or(u32::MAX),
            quoted: narration::Quoted::of(fighter),
        }
    }

    fn agility(&self) -> u64 {
        u64::from(self.fighter.agility)
    }

    fn luck(&self) -> u64 {
        u64::from(self.fighter.luck)
    }
}

/// Rarity's modest bonus to hit points and damage: +5% per star above the first.
fn rarity_percent(fighter: &Fighter) -> u64 {
    100 + 5 * u64::from(fighter.rarity.saturating_sub(1))
}

/// What one swing turned into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    Attack,
    Critical,
    Dodge,
    Skill,
}

impl Action {
    pub(crate) fn keyword(self) -> &'static str {
        match self {
            Action::Attack => "attack",
            Action::Critical => "critical",
            Action::Dodge => "dodge",
            Action::Skill => "skill",
        }
    }
}

/// How the battle ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Finish {
    /// The loser fell to this action in this round.
    Knockout { round: u32, action: Action },
    /// Nobody fell within the round limit; the winner had more hit points left.
    Decision,
}

/// A finished battle: indices into the fighters slice, the log and how it ended.
pub(crate) struct Bout {
    pub(crate) winner: usize,
    pub(crate) loser: usize,
    pub(crate) hp: [u32; 2],
    pub(crate) finish: Finish,
    pub(crate) log: Vec<BattleLogEntry>,
}

/// Plays a battle between two fighters for at most `max_rounds` rounds.
pub(crate) fn fight(fighters: [&Fighter; 2], seed: u64, max_rounds: u32) -> Bout {
    let mut dice = Dice::new(seed);
    let mut side = [Combatant::new(fighters[0]), Combatant::new(fighters[1])];
    let mut log = Vec::new();
    for round in 1..=max_rounds {
        let first = initiative(&side, &mut dice);
        for actor in [first, 1 - first] {
            let target = 1 - actor;
            // The quicker fighter sometimes follows up with a second action.
            let actions =
                1 + usize::from(dice.chance(follow_up_chance(&side[actor], &side[target])));
            for _ in 0..actions {
                let (action, damage) = swing(&side[actor], &side[target], &mut dice);
                // The log reports the damage actually taken, so hp always adds up.
                let damage = damage.min(side[target].hp);
                side[target].hp = side[target].hp.saturating_sub(damage);
                log.push(narration::entry(
                    round,
                    &side[actor],
                    &side[target],
                    action,
                    damage,
                ));
                if side[target].hp == 0 {
                    return Bout {
                        winner: actor,
                        loser: target,
                        hp: [side[0].hp, side[1].hp],
                        finish: Finish::Knockout { round, action },
                        log,
                    };
                }
            }
        }
    }
    let winner = match side[0].hp.cmp(&side[1].hp) {
        std::cmp::Ordering::Greater => 0,
        std::cmp::Ordering::Less => 1,
        std::cmp::Ordering::Equal => usize::from(dice.below(2) == 1),
    };
    Bout {
        winner,
        loser: 1 - winner,
        hp: [side[0].hp, side[1].hp],
        finish: Finish::Decision,
        log,
    }
}

/// Who acts first this round: agility plus a roll, ties settled by a coin.
fn initiative(side: &[Combatant<'_>; 2], dice: &mut Dice) -> usize {
    let score = |c: &Combatant<'_>, dice: &mut Dice| c.agility() + dice.below(c.agility() / 2 + 10);
    let a = score(&side[0], dice);
    let b = score(&side[1], dice);
    match a.cmp(&b) {
        std::cmp::Ordering::Greater => 0,
        std::cmp::Ordering::Less => 1,
        std::cmp::Ordering::Equal => usize::from(dice.below(2) == 1),
    }
}

/// Per-mille chance that `actor` acts twice this round: only when quicker than `target`.
fn follow_up_chance(actor: &Combatant<'_>, target: &Combatant<'_>) -> u64 {
    let (a, d) = (actor.agility(), target.agility());
    300 * a.saturating_sub(d) / (a + d + 20)
}

/// One action of `actor` against `target`: which kind, and the damage it deals.
fn swing(actor: &Combatant<'_>, target: &Combatant<'_>, dice: &mut Dice) -> (Action, u32) {
    let strength = u64::from(actor.fighter.strength);
    let roll = dice.below(strength / 3 + 11);
    let base = (25 + strength / 3 + roll) * rarity_percent(actor.fighter) / 100;
    let (a_agi, d_agi) = (actor.agility(), target.agility());
    let (a_luck, d_luck) = (actor.luck(), target.luck());
    let luck_edge = a_luck * 1000 / (a_luck + d_luck + 20);
    let skill_chance = 50 + 15 * u64::from(actor.fighter.rarity) + luck_edge / 10;
    let (action, damage) = if dice.chance(skill_chance) {
        // A skill cannot be dodged.
        (Action::Skill, base * 7 / 4)
    } else if dice.chance(40 + 300 * d_agi / (d_agi + a_agi + 20)) {
        (Action::Dodge, 0)
    } else if dice.chance(40 + luck_edge * 2 / 5) {
        (Action::Critical, base * 5 / 2)
    } else {
        (Action::Attack, base)
    };
    (action, u32::try_from(damage).unwrap_or(u32::MAX))
}
