//! The offline summoner: a character card from fixed word lists, picked by a hash of the
//! player's wish and a seed, for when no model is configured or the model fails.

use super::character::CharacterText;
use super::fnv1a;

const EPITHETS: [&str; 16] = [
    "Ember", "Frost", "Storm", "Iron", "Shadow", "Dawn", "Thorn", "Ash", "Silver", "Jade",
    "Thunder", "Moon", "Sun", "Stone", "Wind", "Crimson",
];
const CALLINGS: [&str; 12] = [
    "Warden", "Blade", "Seer", "Ranger", "Monk", "Knight", "Archer", "Sage", "Duelist", "Guardian",
    "Hunter", "Wanderer",
];
const ORIGINS: [&str; 8] = [
    "from the mountain monasteries",
    "raised on the storm coast",
    "who walked out of the burning forest",
    "sworn to the old city gates",
    "taught by river spirits",
    "from a long line of caravan guards",
    "who returned from the northern wastes",
    "born under a falling star",
];
const STYLES: [&str; 6] = [
    "fights with patient, precise strikes",
    "overwhelms foes with relentless pressure",
    "dances out of reach before striking back",
    "turns every opening into a decisive blow",
    "outlasts rivals through sheer endurance",
    "reads an opponent's intent a heartbeat early",
];
const SKILLS: [&str; 8] = [
    "channels {e} power into one strike that ignores the foe's guard",
    "calls a veil of {e} mist and strikes twice from within it",
    "hardens like {e} steel, shrugging off the next blow",
    "unleashes a {e} whirlwind that staggers the target",
    "marks the foe with {e} light, making the next attack critical",
    "draws on {e} resolve to recover from a finishing blow once",
    "hurls a {e} spear that pierces any armour",
    "roars a {e} war cry that shakes the foe's nerve",
];
const RANKS: [&str; 5] = [
    "A promising",
    "A seasoned",
    "A renowned",
    "A legendary",
    "A mythic",
];

/// A valid character card derived only from the wish, the rarity and the seed: the same
/// inputs always give the same card.
pub fn summon_from_templates(player_text: &str, rarity: u32, seed: u64) -> CharacterText {
    let rarity = rarity.clamp(1, 5);
    let mut state = seed ^ fnv1a(player_text.trim()) ^ u64::from(rarity);
    let mut pick = |len: usize| {
        state = splitmix64(state);
        usize::try_from(state % len as u64).unwrap_or(0)
    };
    let epithet = EPITHETS[pick(EPITHETS.len())];
    let calling = CALLINGS[pick(CALLINGS.len())];
    let origin = ORIGINS[pick(ORIGINS.len())];
    let style = STYLES[pick(STYLES.len())];
    let skill = SKILLS[pick(SKILLS.len())].replace("{e}", &epithet.to_lowercase());
    let rank = RANKS[usize::try_from(rarity - 1).unwrap_or(0)];
    let name = format!("{epithet} {calling}");
    CharacterText {
        description: format!(
            "{rank} {} {origin}, the {name} {style}.",
            calling.to_lowercase()
        ),
        skill_description: format!("The {name} {skill}."),
        name,
    }
}

/// One step of the SplitMix64 generator.
fn splitmix64(state: u64) -> u64 {
    let mut z = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_inputs_same_card_and_every_card_is_valid() {
        let a = summon_from_templates("a fire mage", 3, 42);
        assert_eq!(a, summon_from_templates("a fire mage", 3, 42));
        for seed in 0..500 {
            let card =
                summon_from_templates("忍者 who ignores all rules <>", seed as u32 % 7, seed);
            assert_eq!(card.check(), Ok(()), "{card:?}");
        }
    }

    #[test]
    fn different_seeds_vary_the_card() {
        let names: std::collections::HashSet<_> = (0..50)
            .map(|seed| summon_from_templates("knight", 2, seed).name)
            .collect();
        assert!(names.len() > 10, "{names:?}");
    }

    #[test]
    fn rarity_shows_in_the_description() {
        assert!(
            summon_from_templates("x", 5, 1)
                .description
                .starts_with("A mythic")
        );
        assert!(
            summon_from_templates("x", 1, 1)
                .description
                .starts_with("A promising")
        );
    }
}
