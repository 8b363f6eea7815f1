//! A character card written by a model (or by the templates): name, description and skill,
//! with the length and alphabet rules every card must meet before it reaches a player.

use serde::{Deserialize, Serialize};

/// The text of a newly summoned character.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CharacterText {
    pub name: String,
    pub description: String,
    pub skill_description: String,
}

impl CharacterText {
    /// Shortest accepted name, in characters.
    pub const NAME_MIN_CHARS: usize = 2;
    /// Longest accepted name, in characters.
    pub const NAME_MAX_CHARS: usize = 50;
    /// Longest accepted description, in characters.
    pub const DESCRIPTION_MAX_CHARS: usize = 1000;
    /// Longest accepted skill description, in characters.
    pub const SKILL_MAX_CHARS: usize = 500;

    /// Whether `name` is acceptable: 2 to 50 characters, each a letter (any script, CJK
    /// included), a digit, a space, `-` or `_`, with at least one letter or digit and no
    /// leading or trailing space.
    pub fn is_valid_name(name: &str) -> bool {
        let count = name.chars().count();
        (Self::NAME_MIN_CHARS..=Self::NAME_MAX_CHARS).contains(&count)
            && name.trim() == name
            && name.chars().any(char::is_alphanumeric)
            && name
                .chars()
                .all(|c| c.is_alphanumeric() || c == ' ' || c == '-' || c == '_')
    }

    /// The card with surrounding whitespace removed from every field.
    pub fn trimmed(self) -> Self {
        Self {
            name: self.name.trim().to_owned(),
            description: self.description.trim().to_owned(),
            skill_description: self.skill_description.trim().to_owned(),
        }
    }

    /// Checks every rule; the error says which one failed.
    pub fn check(&self) -> Result<(), String> {
        if !Self::is_valid_name(&self.name) {
            let quoted: String = self.name.chars().take(60).collect();
            return Err(format!(
                "name {quoted:?} is not {} to {} letters, digits, spaces, - or _",
                Self::NAME_MIN_CHARS,
                Self::NAME_MAX_CHARS
            ));
        }
        let description = self.description.chars().count();
        if description == 0 || description > Self::DESCRIPTION_MAX_CHARS {
            return Err(format!(
                "description has {description} characters, expected 1 to {}",
                Self::DESCRIPTION_MAX_CHARS
            ));
        }
        let skill = self.skill_description.chars().count();
        if skill == 0 || skill > Self::SKILL_MAX_CHARS {
            return Err(format!(
                "skill description has {skill} characters, expected 1 to {}",
                Self::SKILL_MAX_CHARS
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_the_alphabet_and_length_rules() {
        for good in [
            "Li",
            "Aria the Bold",
            "火焰龍",
            "Kai-9_x",
            "영웅 하나",
            "ドラゴン",
        ] {
            assert!(CharacterText::is_valid_name(good), "{good}");
        }
        let long = "a".repeat(51);
        for bad in [
            "A",
            "",
            " Aria",
            "Aria!",
            "<script>",
            "--",
            "a\nb",
            long.as_str(),
        ] {
            assert!(!CharacterText::is_valid_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn check_reports_the_failing_rule() {
        let card = CharacterText {
            name: "Aria".into(),
            description: "d".repeat(1001),
            skill_description: "s".into(),
        };
        assert!(card.check().unwrap_err().contains("description"));
        let card = CharacterText {
            description: "d".into(),
            skill_description: String::new(),
            ..card
        };
        assert!(card.check().unwrap_err().contains("skill"));
    }
}
