//! Characters: summoning (rarity odds, stats, text from the summoner), the owner's list,
//! rename, delete, upgrade and battle history.

pub mod odds;
pub(crate) mod routes;
pub mod store;
pub mod summon;

pub use routes::router;
pub use store::CharacterView;
