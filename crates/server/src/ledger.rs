//! What each registered key has been answered: a query budget per key and
//! the refusal of a ciphertext answered before.
//!
//! Both bound what a data owner learns beyond the outputs it is owed. The
//! output flooding is sized for a number of decryptions per key (`a` in Li,
//! Micciancio, Schultz, Sorrell, CRYPTO 2022, section 4.4: the Gaussian hides
//! the output's weight-shaped noise over `a` outputs); a data owner who asks
//! for more, or asks for the same ciphertext again (evaluation is
//! deterministic, so `k` answers to one ciphertext average the flooding down
//! by `sqrt(k)`), gets past what the flooding was sized for. The budget also
//! bounds black-box model extraction (Tramèr et al., USENIX Security 2016),
//! which encryption does nothing against.
//!
//! The ledger lives in the server's memory: a restart, or another replica,
//! starts every key's count afresh (docs/SECURITY.md says so).

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;

use crate::error::{Result, ServerError};

/// Queries answered per key, and the digests of the masks answered.
#[derive(Default)]
pub struct QueryLedger {
    budget: Option<u64>,
    keys: Mutex<HashMap<String, Answered>>,
}

#[derive(Default)]
struct Answered {
    count: u64,
    digests: HashSet<[u8; 32]>,
}

impl QueryLedger {
    /// A ledger allowing `budget` queries per key (`None`: no limit; repeated
    /// ciphertexts are refused either way).
    pub fn new(budget: Option<u64>) -> Self {
        Self {
            budget,
            keys: Mutex::default(),
        }
    }

    /// Records a query under `key_id` of an input whose masks have the
    /// digest `masks` ([`heman_backend::ModelOwner::input_masks_digest`]),
    /// or refuses it: the key's budget is spent, or an input with these
    /// masks was answered under this key before (whatever its bodies). A
    /// refused query is not counted.
    pub fn admit(&self, key_id: &str, masks: &[u8; 32]) -> Result<()> {
        let mut keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        let answered = keys.entry(key_id.to_string()).or_default();
        if let Some(budget) = self.budget {
            if answered.count >= budget {
                return Err(ServerError::QueryBudget(format!(
                    "key {key_id} has used its {budget} queries: the output flooding is sized for that many; register new evaluation keys (the model owner sets the budget with --queries-per-key)"
                )));
            }
        }
        if !answered.digests.insert(*masks) {
            return Err(ServerError::BadRequest(
                "this ciphertext's masks were answered under this key before: encrypt the input afresh (answers to inputs sharing masks would average the output flooding away)".into(),
            ));
        }
        answered.count += 1;
        Ok(())
    }

    /// Queries answered under `key_id` so far.
    pub fn answered(&self, key_id: &str) -> u64 {
        let keys = self.keys.lock().unwrap_or_else(|e| e.into_inner());
        keys.get(key_id).map_or(0, |a| a.count)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masks(n: u8) -> [u8; 32] {
        [n; 32]
    }

    #[test]
    fn a_repeated_ciphertext_and_queries_past_the_budget_are_refused() {
        let ledger = QueryLedger::new(Some(2));
        ledger.admit("k", &masks(1)).unwrap();
        let again = ledger.admit("k", &masks(1)).unwrap_err();
        assert!(again.to_string().contains("answered under this key before"));
        // Another key may send the same masks (they decrypt to nothing under it).
        ledger.admit("other", &masks(1)).unwrap();
        ledger.admit("k", &masks(2)).unwrap();
        assert_eq!(ledger.answered("k"), 2);
        let spent = ledger.admit("k", &masks(3)).unwrap_err();
        assert!(matches!(spent, ServerError::QueryBudget(_)), "{spent}");
        assert_eq!(ledger.answered("k"), 2);
    }

    #[test]
    fn without_a_budget_only_repeats_are_refused() {
        let ledger = QueryLedger::new(None);
        for i in 0..100u8 {
            ledger.admit("k", &masks(i)).unwrap();
        }
        assert!(ledger.admit("k", &masks(7)).is_err());
    }
}
