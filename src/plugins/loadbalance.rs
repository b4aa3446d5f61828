//! `loadbalance`: turns the address records of successive answers (round robin), on the way
//! back from the stage that answered.

use crate::zone::{Rdata, Rr};

/// Rotates the trailing run of A/AAAA records by `turn` (a CNAME chain before them stays first).
pub fn rotate_addresses(answers: &mut [Rr], turn: usize) {
    let start = answers
        .iter()
        .rposition(|rr| !matches!(rr.data, Rdata::A(_) | Rdata::Aaaa(_)))
        .map_or(0, |i| i + 1);
    let run = &mut answers[start..];
    if run.len() > 1 {
        run.rotate_left(turn % run.len());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::zone::{Owner, Suffix, Target};

    fn a(last: u8) -> Rr {
        Rr {
            owner: Owner::Query,
            ttl: 5,
            data: Rdata::A([10, 0, 0, last].into()),
        }
    }

    #[test]
    fn addresses_turn_after_a_cname_that_stays_first() {
        let cname = Rr {
            owner: Owner::Query,
            ttl: 5,
            data: Rdata::Cname(Target {
                labels: "x.example".into(),
                suffix: Suffix::Root,
            }),
        };
        let mut answers = vec![cname.clone(), a(1), a(2), a(3)];
        rotate_addresses(&mut answers, 1);
        assert_eq!(answers, [cname.clone(), a(2), a(3), a(1)]);
        rotate_addresses(&mut answers, 5);
        assert_eq!(answers, [cname, a(1), a(2), a(3)]);
    }
}
