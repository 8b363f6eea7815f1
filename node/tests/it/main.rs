//! The node from the outside, one test binary: its HTTP surface against the Sim engine
//! (`http`), its capacity limit (`capacity`), and its life cycle against a stand-in aggregator
//! (`lifecycle`). `common` starts nodes and holds the stand-ins.

mod capacity;
mod common;
mod http;
mod lifecycle;
