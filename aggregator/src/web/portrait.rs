//! Character portraits: an SVG drawn from a character's innate traits alone, so one character
//! always gets the same bytes (and one ETag) for as long as it exists.
//!
//! - rarity: the frame's colour and width, and that many stars;
//! - strength: the width of the shoulders, the armour's colour, the red bar;
//! - agility: speed streaks behind the figure, the green bar;
//! - luck: sparkles in the background, the gold bar;
//! - the skill text, hashed (SHA-256): the background, the skin tone, and the chest emblem's
//!   shape, colours and rotation.
//!
//! The stats drawn are the character's stats at level 1 (what it was summoned with): upgrades
//! add the same amount to every stat, so they are taken off again and a portrait never changes
//! with the level. No text of any kind is written into the SVG (no name, no skill text, no
//! `<text>` element), so nothing a player or a model wrote can reach the markup; every number
//! is an integer, so the output does not depend on floating-point formatting.

use std::fmt::Write;

use crate::game::characters::CharacterView;
use crate::game::characters::odds;

/// What a portrait is drawn from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traits<'a> {
    /// 1 to 5 stars (clamped).
    pub rarity: i64,
    /// Stats at level 1.
    pub strength: i64,
    pub agility: i64,
    pub luck: i64,
    /// Hashed, never embedded.
    pub skill: &'a str,
}

impl<'a> Traits<'a> {
    /// The innate traits of a character: its stats with the upgrades taken off.
    pub fn innate(character: &'a CharacterView) -> Traits<'a> {
        let gained = (character.level - 1).max(0) * odds::stat_gain_per_level(character.rarity);
        let base = |stat: i64| (stat - gained).max(0);
        Traits {
            rarity: character.rarity,
            strength: base(character.strength),
            agility: base(character.agility),
            luck: base(character.luck),
            skill: &character.skill_description,
        }
    }
}

/// Width and height of the drawing (the SVG scales to any size).
const WIDTH: i64 = 120;
const HEIGHT: i64 = 160;

/// Frame colour per rarity, 1★ to 5★: grey, green, blue, purple, gold.
const FRAMES: [&str; 5] = ["#9aa3ad", "#3fa34d", "#3b82f6", "#a855f7", "#f5b301"];
const BACKGROUNDS: [&str; 8] = [
    "#1f2a44", "#2d1e3e", "#1e3a34", "#3a2a1e", "#2a2f3a", "#3a1e2a", "#1e2f3a", "#33301e",
];
const SKINS: [&str; 5] = ["#f1c27d", "#e0ac69", "#c68642", "#8d5524", "#ffdbac"];
/// Armour by strength, light to heavy.
const ARMOURS: [&str; 5] = ["#64748b", "#7c6f64", "#8c4a3c", "#a23b2e", "#b8321f"];
/// Hair or helmet, from the skill.
const CROWNS: [&str; 6] = [
    "#2b2b2b", "#6b4226", "#c9a227", "#a0a7b4", "#7a1f1f", "#3b4a6b",
];
const EMBLEMS: [&str; 8] = [
    "#f5f5f5", "#ffd166", "#06d6a0", "#ef476f", "#118ab2", "#f78c6b", "#c77dff", "#90e0ef",
];

/// A five-pointed star around (0, 0), radius 6.
const STAR: &str = "0,-6 1.5,-2 5.7,-1.9 2.4,0.8 3.5,4.9 0,2.5 -3.5,4.9 -2.4,0.8 -5.7,-1.9 -1.5,-2";
/// A four-pointed sparkle around (0, 0).
const SPARKLE: &str = "0,-4 1,-1 4,0 1,1 0,4 -1,1 -4,0 -1,-1";

/// Emblem shapes around (0, 0), about 18 wide; `{c}` is the fill colour.
const SHAPES: [&str; 8] = [
    r#"<circle r="8" fill="{c}"/>"#,
    r#"<polygon points="0,-9 9,0 0,9 -9,0" fill="{c}"/>"#,
    r#"<polygon points="0,-9 8,6 -8,6" fill="{c}"/>"#,
    r#"<polygon points="0,-9 8,-4 8,4 0,9 -8,4 -8,-4" fill="{c}"/>"#,
    r#"<path d="M-3,-9h6v6h6v6h-6v6h-6v-6h-6v-6h6z" fill="{c}"/>"#,
    r#"<circle r="7" fill="none" stroke="{c}" stroke-width="3"/>"#,
    r#"<polygon points="0,-9 2,-3 9,-3 3,1 5,8 0,4 -5,8 -3,1 -9,-3 -2,-3" fill="{c}"/>"#,
    r#"<path d="M0,-9A9,9 0 0 0 0,9A5,9 0 0 1 0,-9z" fill="{c}"/>"#,
];

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// A small deterministic generator (SplitMix64) for the sparkles' positions.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi`.
    fn range(&mut self, lo: i64, hi: i64) -> i64 {
        let span = u64::try_from(hi - lo).unwrap_or(1).max(1);
        lo + i64::try_from(self.next() % span).unwrap_or(0)
    }
}

fn pick<T: Copy>(items: &[T], byte: u8) -> T {
    items[usize::from(byte) % items.len()]
}

/// How far a stat is above its rarity's minimum at summoning (0 to 20, clamped).
fn roll(stat: i64, rarity: i64) -> i64 {
    (stat - (10 * rarity + 10)).clamp(0, 20)
}

/// The portrait of a character with these traits: an SVG document, always the same bytes for
/// the same traits.
pub fn draw(traits: &Traits<'_>) -> String {
    let rarity = traits.rarity.clamp(1, 5);
    let [strength, agility, luck] =
        [traits.strength, traits.agility, traits.luck].map(|s| s.max(0));
    let skill = sha256(traits.skill.as_bytes());
    let mut seed = [0u8; 8];
    seed.copy_from_slice(&skill[24..32]);
    let mut rng = SplitMix(
        u64::from_le_bytes(seed)
            ^ (u64::try_from(strength).unwrap_or(0) << 42)
            ^ (u64::try_from(agility).unwrap_or(0) << 21)
            ^ u64::try_from(luck).unwrap_or(0)
            ^ (u64::try_from(rarity).unwrap_or(0) << 60),
    );
    let frame = FRAMES[usize::try_from(rarity - 1).unwrap_or(0)];
    let background = pick(&BACKGROUNDS, skill[0]);
    let skin = pick(&SKINS, skill[1]);
    let armour = ARMOURS[usize::try_from(roll(strength, rarity) / 5)
        .unwrap_or(0)
        .min(4)];
    let emblem = pick(&EMBLEMS, skill[2]);
    let emblem_inner = pick(&EMBLEMS, skill[3].wrapping_add(3));
    let shape = pick(&SHAPES, skill[4]);
    let rotation = i64::from(skill[5] % 8) * 45;
    let crown = pick(&CROWNS, skill[6]);
    // A cap (hair or helmet) of one of three heights.
    let crown_top = 40 + i64::from(skill[7] % 3) * 3;

    let mut svg = String::with_capacity(2048);
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" viewBox="0 0 {WIDTH} {HEIGHT}">"#
    );
    let _ = write!(
        svg,
        r#"<rect width="{WIDTH}" height="{HEIGHT}" rx="12" fill="{background}"/>"#
    );
    // An aura behind the figure, brighter with luck.
    let aura = 30 + roll(luck, rarity);
    let _ = write!(
        svg,
        r#"<circle cx="60" cy="78" r="{aura}" fill="{frame}" fill-opacity="0.18"/>"#
    );
    // Luck: sparkles.
    for _ in 0..1 + roll(luck, rarity) / 4 {
        let (x, y) = (rng.range(14, 106), rng.range(28, 96));
        let _ = write!(
            svg,
            r##"<polygon points="{SPARKLE}" transform="translate({x} {y})" fill="#fde68a" fill-opacity="0.85"/>"##
        );
    }
    // Agility: speed streaks on both sides.
    for i in 0..1 + roll(agility, rarity) / 5 {
        let y = 52 + i * 11;
        let _ = write!(
            svg,
            r##"<path d="M14 {y}l16 -6M106 {y}l-16 -6" stroke="#7dd3fc" stroke-width="2" stroke-linecap="round" stroke-opacity="0.7"/>"##
        );
    }
    // The figure: shoulders as wide as it is strong, a head, eyes.
    let half = 26 + roll(strength, rarity) / 2;
    let (left, right) = (60 - half, 60 + half);
    let _ = write!(
        svg,
        r#"<path d="M{left} 126Q{left} 84 60 84Q{right} 84 {right} 126Z" fill="{armour}" stroke="{frame}" stroke-width="1.5"/>"#
    );
    let _ = write!(
        svg,
        r##"<circle cx="60" cy="64" r="15" fill="{skin}"/><circle cx="54" cy="63" r="2" fill="#1f2937"/><circle cx="66" cy="63" r="2" fill="#1f2937"/>"##
    );
    let _ = write!(
        svg,
        r#"<path d="M44 62Q44 {crown_top} 60 {crown_top}Q76 {crown_top} 76 62Q68 53 60 54Q52 53 44 62Z" fill="{crown}"/>"#
    );
    // The skill's emblem on the chest.
    let _ = write!(
        svg,
        r#"<g transform="translate(60 106) rotate({rotation})">{}<circle r="2.5" fill="{emblem_inner}"/></g>"#,
        shape.replace("{c}", emblem)
    );
    // Stars: one per rarity, centred at the top.
    let first = 60 - (rarity - 1) * 7;
    for i in 0..rarity {
        let x = first + i * 14;
        let _ = write!(
            svg,
            r#"<polygon points="{STAR}" transform="translate({x} 18)" fill="{frame}"/>"#
        );
    }
    // Stat bars: strength, agility, luck, one pixel per point (at most 80).
    for (i, (stat, colour)) in [
        (strength, "#e5484d"),
        (agility, "#30a46c"),
        (luck, "#f5b301"),
    ]
    .into_iter()
    .enumerate()
    {
        let y = 134 + i64::try_from(i).unwrap_or(0) * 7;
        let width = stat.clamp(1, 80);
        let _ = write!(
            svg,
            r##"<rect x="20" y="{y}" width="80" height="4" rx="2" fill="#000000" fill-opacity="0.35"/><rect x="20" y="{y}" width="{width}" height="4" rx="2" fill="{colour}"/>"##
        );
    }
    // The frame, wider for rarer characters.
    let stroke = 1 + rarity;
    let _ = write!(
        svg,
        r#"<rect x="3" y="3" width="114" height="154" rx="10" fill="none" stroke="{frame}" stroke-width="{stroke}"/></svg>"#
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn traits(skill: &str) -> Traits<'_> {
        Traits {
            rarity: 3,
            strength: 52,
            agility: 47,
            luck: 41,
            skill,
        }
    }

    #[test]
    fn the_same_traits_draw_the_same_bytes() {
        let a = draw(&traits("Storm blade"));
        let b = draw(&traits("Storm blade"));
        assert_eq!(a, b);
        assert!(
            a.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
            "{a}"
        );
        assert!(a.ends_with("</svg>"));
    }

    /// Browsers keep a portrait for a day under its ETag: a change of the drawing must be
    /// deliberate (update this digest with it).
    #[test]
    fn the_drawing_is_pinned() {
        let svg = draw(&traits("Storm blade"));
        assert_eq!(
            crate::web::assets::etag_of(svg.as_bytes()),
            "\"de471cd30d6e148016edf357583588a4\"",
            "{svg}"
        );
    }

    #[test]
    fn every_trait_changes_the_drawing() {
        let base = traits("Storm blade");
        let reference = draw(&base);
        let variants = [
            Traits {
                rarity: 4,
                ..base.clone()
            },
            Traits {
                strength: 53,
                ..base.clone()
            },
            Traits {
                agility: 48,
                ..base.clone()
            },
            Traits {
                luck: 42,
                ..base.clone()
            },
            Traits {
                skill: "Storm blade!",
                ..base.clone()
            },
        ];
        let mut seen = vec![reference];
        for v in &variants {
            let svg = draw(v);
            assert!(!seen.contains(&svg), "{v:?} draws like another");
            seen.push(svg);
        }
    }

    #[test]
    fn rarity_sets_the_frame_and_the_stars() {
        for rarity in 1..=5 {
            let svg = draw(&Traits {
                rarity,
                ..traits("x")
            });
            let frame = FRAMES[usize::try_from(rarity - 1).unwrap()];
            assert!(
                svg.contains(&format!(
                    r#"stroke="{frame}" stroke-width="{}""#,
                    1 + rarity
                )),
                "{svg}"
            );
            let stars = svg.matches(&format!(r#"points="{STAR}""#)).count();
            assert_eq!(stars, usize::try_from(rarity).unwrap());
        }
        // Out-of-range rarities are clamped, never a panic.
        assert_eq!(
            draw(&Traits {
                rarity: 0,
                ..traits("x")
            }),
            draw(&Traits {
                rarity: 1,
                ..traits("x")
            })
        );
        assert!(
            draw(&Traits {
                rarity: 99,
                strength: -5,
                agility: i64::MAX,
                luck: i64::MIN,
                skill: ""
            })
            .ends_with("</svg>")
        );
    }

    #[test]
    fn no_text_reaches_the_markup() {
        let hostile = r#"</svg><script>alert("x")</script>&amp;<text>"#;
        let svg = draw(&traits(hostile));
        assert!(!svg.contains("script"), "{svg}");
        assert!(!svg.contains("<text"), "{svg}");
        assert!(!svg.contains("alert"), "{svg}");
        assert!(!svg.contains('&'), "{svg}");
        // Exactly one document: the closing tag appears once, at the end.
        assert_eq!(svg.matches("</svg>").count(), 1);
        // Every element is one the drawing writes.
        for tag in svg.split('<').skip(1) {
            let name: String = tag
                .trim_start_matches('/')
                .chars()
                .take_while(char::is_ascii_alphabetic)
                .collect();
            assert!(
                ["svg", "rect", "circle", "polygon", "path", "g"].contains(&name.as_str()),
                "unexpected element {name} in {svg}"
            );
        }
    }

    #[test]
    fn upgrades_do_not_change_the_portrait() {
        let card = |level: i64| {
            let gained = (level - 1) * odds::stat_gain_per_level(2);
            CharacterView {
                id: "c".into(),
                player_id: "p".into(),
                name: "Aria".into(),
                prompt: "a knight".into(),
                description: "d".into(),
                skill_description: "Storm blade".into(),
                text_source: "templates".into(),
                rarity: 2,
                level,
                max_level: odds::MAX_LEVEL,
                strength: 35 + gained,
                agility: 41 + gained,
                luck: 30 + gained,
                rating: 1000,
                wins: 0,
                losses: 0,
                win_rate_bp: 0,
                next_upgrade: None,
                image_url: String::new(),
                created_at_ms: 0,
            }
        };
        let (one, five) = (card(1), card(5));
        assert_eq!(Traits::innate(&one), Traits::innate(&five));
        assert_eq!(Traits::innate(&five).strength, 35);
        assert_eq!(draw(&Traits::innate(&one)), draw(&Traits::innate(&five)));
    }
}
