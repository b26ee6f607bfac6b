//! The configuration a commit hands to a runtime's driver: the registry's provider puts the
//! new configuration in, the driver takes it on its next turn. Only a change is handed over.

/// The configuration a runtime runs and the one waiting for its driver.
#[derive(Debug, Default)]
pub struct Handoff<T> {
    current: T,
    waiting: Option<T>,
}

impl<T: Clone + PartialEq> Handoff<T> {
    /// Makes `cfg` current and leaves it for the driver; false (and nothing left) when it is
    /// what runs already.
    pub fn offer(&mut self, cfg: T) -> bool {
        if cfg == self.current {
            return false;
        }
        self.current = cfg.clone();
        self.waiting = Some(cfg);
        true
    }

    /// The configuration offered since the driver last took one.
    pub fn take(&mut self) -> Option<T> {
        self.waiting.take()
    }

    /// The configuration the runtime runs (or is about to).
    pub fn current(&self) -> &T {
        &self.current
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_changes_are_handed_over_once() {
        let mut h = Handoff::<u32>::default();
        assert!(!h.offer(0), "what runs already");
        assert_eq!(h.take(), None);
        assert!(h.offer(7));
        assert!(!h.offer(7));
        assert_eq!((h.take(), h.take(), *h.current()), (Some(7), None, 7));
    }
}
