//! Groups: weighted sets of backends with sticky assignment (canaries, blue/green).
//!
//! A client's sticky key (a gateway-set cookie, or the hash of a configured header or other
//! [`AffinityKey`]) picks one backend by weighted rendezvous hashing: every backend scores the
//! key (`weight / -ln(u)` with `u` a uniform hash of key and backend name) and the highest score
//! wins. A backend therefore receives its weight's share of keys; a key's choice depends only on
//! the backends present, so removing one moves only the clients it had, and lowering a weight
//! moves only some of its own clients. Weight 0 drains a backend.

use super::metrics::{GroupMetrics, RoutingMetrics};
use super::rules::RequestFacts;
use kit::affinity::{mix, stable_hash, AffinityKey};

use std::sync::Arc;
use std::time::Duration;

/// How a group keeps a client on one backend.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Sticky {
    /// A random client id in a cookie the gateway sets on the first response.
    Cookie {
        /// Cookie name.
        name: String,
        /// Cookie lifetime (`Max-Age`).
        max_age: Duration,
    },
    /// The hash of a request value (header, cookie, query parameter, client address); a request
    /// without it falls back to its client address.
    Key(AffinityKey),
}

/// A group's sticky key for one request, and the cookie to set when the client had none.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Assignment {
    /// The key backends are ranked by.
    pub key: u64,
    /// A new client id to hand out in the sticky cookie.
    pub new_cookie: Option<u64>,
}

impl Sticky {
    /// The sticky key of a request.
    pub fn assign(&self, facts: &RequestFacts<'_>) -> Assignment {
        match self {
            Sticky::Cookie { name, .. } => {
                let sent = kit::params::cookies(facts.headers)
                    .find(|(n, _)| n.eq_ignore_ascii_case(name))
                    .and_then(|(_, v)| parse_client_id(v));
                match sent {
                    Some(id) => Assignment {
                        key: mix(id),
                        new_cookie: None,
                    },
                    None => {
                        let id = kit::ids::random_u64();
                        Assignment {
                            key: mix(id),
                            new_cookie: Some(id),
                        }
                    }
                }
            }
            Sticky::Key(source) => Assignment {
                key: source
                    .hash(facts)
                    .or_else(|| AffinityKey::ClientIp.hash(facts))
                    .unwrap_or_else(kit::ids::random_u64),
                new_cookie: None,
            },
        }
    }

    /// The `Set-Cookie` value handing out client id `id` (`Secure` on TLS connections).
    pub fn cookie(&self, id: u64, tls: bool) -> Option<String> {
        let Sticky::Cookie { name, max_age } = self else {
            return None;
        };
        let secure = if tls { "; Secure" } else { "" };
        Some(format!(
            "{name}={id:016x}; Path=/; Max-Age={}; HttpOnly; SameSite=Lax{secure}",
            max_age.as_secs()
        ))
    }
}

/// A client id as the sticky cookie carries it: 16 lower-case hex digits.
fn parse_client_id(value: &str) -> Option<u64> {
    if value.len() != 16 || !value.bytes().all(|b| b.is_ascii_hexdigit()) {
        return None;
    }
    u64::from_str_radix(value, 16).ok()
}

/// One backend of a group.
pub struct Member<B> {
    /// The backend.
    pub backend: Arc<B>,
    /// Its config name.
    pub name: Arc<str>,
    /// Its share (0 drains it).
    pub weight: u32,
    seed: u64,
    /// Requests, errors and latency of this group's traffic to this backend.
    pub metrics: GroupMetrics,
}

/// A weighted, sticky set of backends.
pub struct Group<B> {
    /// The group's config name.
    pub name: Arc<str>,
    /// How clients are kept on one backend.
    pub sticky: Sticky,
    members: Vec<Member<B>>,
}

impl<B> Group<B> {
    /// A group of `(name, backend, weight)`, each member counting into `metrics`.
    pub fn new(
        name: &str,
        sticky: Sticky,
        members: Vec<(String, Arc<B>, u32)>,
        metrics: &RoutingMetrics,
    ) -> Group<B> {
        Group {
            members: members
                .into_iter()
                .map(|(backend_name, backend, weight)| Member {
                    seed: stable_hash(backend_name.as_bytes()),
                    metrics: metrics.group(name, &backend_name),
                    name: Arc::from(backend_name),
                    backend,
                    weight,
                })
                .collect(),
            name: Arc::from(name),
            sticky,
        }
    }

    /// The member with the highest score for `key` among those `accept` lets through; members
    /// with weight 0 are never picked.
    pub fn pick(&self, key: u64, accept: impl Fn(&Arc<B>) -> bool) -> Option<&Member<B>> {
        self.members
            .iter()
            .filter(|m| m.weight > 0 && accept(&m.backend))
            .map(|m| (score(key, m.seed, m.weight), m))
            .max_by(|a, b| a.0.total_cmp(&b.0))
            .map(|(_, m)| m)
    }

    /// Whether the group splits traffic (more than one member with a positive weight), so a
    /// client needs a sticky assignment at all.
    pub fn splits(&self) -> bool {
        self.members.iter().filter(|m| m.weight > 0).count() > 1
    }

    /// The member serving `backend`, for metrics.
    /// Every member backend, drained ones included.
    pub fn backends(&self) -> impl Iterator<Item = &Arc<B>> {
        self.members.iter().map(|m| &m.backend)
    }

    /// The member serving `backend`, if it is one.
    pub fn member_of(&self, backend: &Arc<B>) -> Option<&Member<B>> {
        self.members
            .iter()
            .find(|m| Arc::ptr_eq(&m.backend, backend))
    }
}

/// Weighted rendezvous score: `weight / -ln(u)`, `u` uniform in (0, 1) from key and seed.
fn score(key: u64, seed: u64, weight: u32) -> f64 {
    let h = mix(key ^ seed.rotate_left(17) ^ 0x9e37_79b9_7f4a_7c15);
    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    f64::from(weight) / -u.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group(weights: &[(&str, u32)]) -> Group<String> {
        Group::new(
            "g",
            Sticky::Key(AffinityKey::Path),
            weights
                .iter()
                .map(|(n, w)| (n.to_string(), Arc::new(n.to_string()), *w))
                .collect(),
            &RoutingMetrics::unregistered(),
        )
    }

    fn choice(g: &Group<String>, key: u64) -> String {
        g.pick(key, |_| true).unwrap().name.to_string()
    }

    #[test]
    fn weights_set_the_share() {
        let g = group(&[("stable", 95), ("canary", 5)]);
        let canary = (0..100_000u64)
            .filter(|k| choice(&g, mix(*k)) == "canary")
            .count();
        assert!((4_500..5_500).contains(&canary), "{canary}");
    }

    #[test]
    fn removing_a_backend_moves_only_its_clients() {
        let before = group(&[("a", 1), ("b", 1), ("c", 2)]);
        let after = group(&[("a", 1), ("c", 2)]);
        for k in 0..10_000u64 {
            let key = mix(k);
            let was = choice(&before, key);
            if was != "b" {
                assert_eq!(choice(&after, key), was, "key {k} moved");
            }
        }
    }

    #[test]
    fn drained_and_refused_members_are_skipped() {
        let g = group(&[("a", 0), ("b", 1), ("c", 1)]);
        for k in 0..1_000u64 {
            let picked = g.pick(mix(k), |b| b.as_str() != "c").unwrap();
            assert_eq!(&*picked.name, "b");
        }
        assert!(g.pick(1, |_| false).is_none());
    }

    #[test]
    fn cookies_carry_client_ids() {
        let sticky = Sticky::Cookie {
            name: "ag_web".into(),
            max_age: Duration::from_secs(60),
        };
        let mut headers = http::HeaderMap::new();
        let facts = |h: &http::HeaderMap| {
            let f = RequestFacts {
                method: &http::Method::GET,
                headers: h,
                path: "/",
                query: None,
                client: None,
            };
            sticky.assign(&f)
        };
        let first = facts(&headers);
        let id = first.new_cookie.expect("a new client gets a cookie");
        let set = sticky.cookie(id, true).unwrap();
        assert!(set.starts_with(&format!("ag_web={id:016x}; Path=/; Max-Age=60")));
        assert!(set.ends_with("; Secure"));
        headers.insert("cookie", format!("x=1; ag_web={id:016x}").parse().unwrap());
        assert_eq!(
            facts(&headers),
            Assignment {
                key: first.key,
                new_cookie: None
            }
        );
        headers.insert("cookie", "ag_web=zz".parse().unwrap());
        assert!(facts(&headers).new_cookie.is_some());
    }
}
