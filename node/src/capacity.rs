//! How many battles the node generates at once, enforced by a semaphore.

use std::sync::Arc;

use metrics::Gauge;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// The node's battle slots. Cheap to clone; clones share the slots.
#[derive(Clone)]
pub struct Capacity {
    slots: Arc<Semaphore>,
    max: u32,
    /// `hero_node_in_flight`.
    in_flight: Gauge,
}

/// One battle slot; freed when dropped.
pub struct Slot {
    _permit: OwnedSemaphorePermit,
    in_flight: Gauge,
}

impl Capacity {
    /// `max` slots, their use shown on `in_flight`.
    pub fn new(max: u32, in_flight: Gauge) -> Self {
        Self {
            slots: Arc::new(Semaphore::new(max as usize)),
            max,
            in_flight,
        }
    }

    /// Takes a slot if one is free right now; never waits.
    pub fn try_acquire(&self) -> Option<Slot> {
        let permit = Arc::clone(&self.slots).try_acquire_owned().ok()?;
        self.in_flight.increment(1.0);
        Some(Slot {
            _permit: permit,
            in_flight: self.in_flight.clone(),
        })
    }

    /// Battles being generated right now.
    pub fn in_flight(&self) -> u32 {
        let free = u32::try_from(self.slots.available_permits()).unwrap_or(self.max);
        self.max.saturating_sub(free)
    }

    pub fn max(&self) -> u32 {
        self.max
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.in_flight.decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slots_run_out_and_come_back() {
        let capacity = Capacity::new(2, Gauge::noop());
        let a = capacity.try_acquire().unwrap();
        let _b = capacity.try_acquire().unwrap();
        assert_eq!(capacity.in_flight(), 2);
        assert!(capacity.try_acquire().is_none());
        drop(a);
        assert_eq!(capacity.in_flight(), 1);
        assert!(capacity.try_acquire().is_some());
    }
}
