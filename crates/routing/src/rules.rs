//! Steering rules: per host, an ordered list of conditions → a group, ALB-listener style.
//!
//! A rule runs after the route matched. The first rule whose conditions all hold (they are
//! ANDed) names the group that serves the request; without a match the route's own target
//! serves. Header and cookie names compare case-insensitively (header names as RFC 9110
//! defines them; cookie names the same way, so `X-Beta-Access` and `x-beta-access` are one
//! cookie here). Values compare exactly as sent, or by a regular expression (`(?i)` for a
//! case-insensitive one). Query values are compared after `%XX`/`+` decoding.

use http::{HeaderName, Method};
use ipnet::IpNet;
use kit::params;

pub use kit::affinity::RequestFacts;

/// How a header's value is tested.
#[derive(Debug, Clone)]
pub enum ValueTest {
    /// Some field of the header equals this text exactly.
    Equals(String),
    /// Some field of the header matches this regular expression (anywhere, unless anchored).
    Matches(regex::Regex),
    /// The header is present (`true`) or absent (`false`).
    Present(bool),
}

/// One condition of a rule.
#[derive(Debug, Clone)]
pub enum Condition {
    /// A request header.
    Header {
        /// Header name (lower-case, as `http` stores names).
        name: HeaderName,
        /// What its value must be.
        test: ValueTest,
    },
    /// A cookie (name compared case-insensitively) equals a value exactly.
    Cookie {
        /// Cookie name.
        name: String,
        /// Required value.
        equals: String,
    },
    /// A query parameter (name as sent) equals a value after decoding.
    Query {
        /// Parameter name.
        name: String,
        /// Required decoded value.
        equals: String,
    },
    /// The normalised path starts with this prefix, segment-wise (`/a` matches `/a/b`, not `/ab`).
    PathPrefix(String),
    /// The method is one of these.
    Method(Vec<Method>),
    /// The client address is inside one of these networks.
    ClientIn(Vec<IpNet>),
}

impl Condition {
    /// Whether the condition holds for a request.
    pub fn holds(&self, facts: &RequestFacts<'_>) -> bool {
        match self {
            Condition::Header { name, test } => {
                let mut values = facts.headers.get_all(name).iter();
                match test {
                    ValueTest::Present(present) => values.next().is_some() == *present,
                    ValueTest::Equals(text) => values.any(|v| v.as_bytes() == text.as_bytes()),
                    ValueTest::Matches(re) => {
                        values.any(|v| v.to_str().is_ok_and(|text| re.is_match(text)))
                    }
                }
            }
            Condition::Cookie { name, equals } => params::cookies(facts.headers)
                .any(|(n, v)| n.eq_ignore_ascii_case(name) && v == equals),
            Condition::Query { name, equals } => params::pairs(facts.query.unwrap_or_default())
                .any(|(n, v)| n == name && params::decode(v).is_some_and(|d| d == *equals)),
            Condition::PathPrefix(prefix) => kit::path::has_prefix(facts.path, prefix),
            Condition::Method(methods) => methods.contains(facts.method),
            Condition::ClientIn(nets) => facts
                .client
                .is_some_and(|ip| nets.iter().any(|n| n.contains(&ip))),
        }
    }

    /// Whether `self` holds whenever `narrower` holds: identical conditions, a path prefix that
    /// contains the other's, a method or network list that covers the other's.
    fn implied_by(&self, narrower: &Condition) -> bool {
        match (self, narrower) {
            (Condition::PathPrefix(wide), Condition::PathPrefix(narrow)) => {
                kit::path::has_prefix(narrow, wide)
            }
            (Condition::Method(wide), Condition::Method(narrow)) => {
                narrow.iter().all(|m| wide.contains(m))
            }
            (Condition::ClientIn(wide), Condition::ClientIn(narrow)) => {
                narrow.iter().all(|n| wide.iter().any(|w| w.contains(n)))
            }
            (Condition::Header { name: a, test: ta }, Condition::Header { name: b, test: tb }) => {
                a == b && same_test(ta, tb)
            }
            (
                Condition::Cookie {
                    name: a,
                    equals: va,
                },
                Condition::Cookie {
                    name: b,
                    equals: vb,
                },
            ) => a.eq_ignore_ascii_case(b) && va == vb,
            (
                Condition::Query {
                    name: a,
                    equals: va,
                },
                Condition::Query {
                    name: b,
                    equals: vb,
                },
            ) => a == b && va == vb,
            _ => false,
        }
    }
}

fn same_test(a: &ValueTest, b: &ValueTest) -> bool {
    match (a, b) {
        (ValueTest::Equals(x), ValueTest::Equals(y)) => x == y,
        (ValueTest::Matches(x), ValueTest::Matches(y)) => x.as_str() == y.as_str(),
        (ValueTest::Present(x), ValueTest::Present(y)) => x == y,
        // A header that equals a value is present.
        (ValueTest::Present(true), ValueTest::Equals(_) | ValueTest::Matches(_)) => true,
        _ => false,
    }
}

/// A rule: conditions (all must hold) and the group it forwards to.
#[derive(Debug, Clone)]
pub struct Rule<G> {
    /// Label for metrics and logs (default `rules[N]`).
    pub name: String,
    /// Conditions, ANDed; an empty list always matches.
    pub conditions: Vec<Condition>,
    /// Where a matching request goes: a group name in the config, the live group when compiled.
    pub group: G,
}

impl<G> Rule<G> {
    /// Whether every condition holds.
    pub fn matches(&self, facts: &RequestFacts<'_>) -> bool {
        self.conditions.iter().all(|c| c.holds(facts))
    }

    /// Whether this rule matches every request `later` matches, so `later` can never be reached
    /// behind it: each of this rule's conditions is implied by one of `later`'s.
    pub fn shadows<H>(&self, later: &Rule<H>) -> bool {
        self.conditions
            .iter()
            .all(|c| later.conditions.iter().any(|n| c.implied_by(n)))
    }
}

/// The first rule that matches, in order.
pub fn first_match<'r, G>(rules: &'r [Rule<G>], facts: &RequestFacts<'_>) -> Option<&'r Rule<G>> {
    rules.iter().find(|r| r.matches(facts))
}

/// For each rule that an earlier one always pre-empts: (its index, the earlier rule's index).
pub fn unreachable<G>(rules: &[Rule<G>]) -> Vec<(usize, usize)> {
    let mut out = Vec::new();
    for (j, later) in rules.iter().enumerate() {
        if let Some(i) = rules[..j].iter().position(|r| r.shadows(later)) {
            out.push((j, i));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use http::HeaderMap;

    fn facts<'a>(
        headers: &'a HeaderMap,
        path: &'a str,
        query: Option<&'a str>,
    ) -> RequestFacts<'a> {
        RequestFacts {
            method: &Method::GET,
            headers,
            path,
            query,
            client: Some("10.1.2.3".parse().unwrap()),
        }
    }

    fn rule(conditions: Vec<Condition>, group: &str) -> Rule<String> {
        Rule {
            name: group.into(),
            conditions,
            group: group.into(),
        }
    }

    fn header(name: &str, test: ValueTest) -> Condition {
        Condition::Header {
            name: HeaderName::from_bytes(name.to_ascii_lowercase().as_bytes()).unwrap(),
            test,
        }
    }

    #[test]
    fn migration_rules_in_order() {
        let rules = vec![
            rule(
                vec![header("X-Dev-Mode", ValueTest::Equals("true".into()))],
                "ecs",
            ),
            rule(
                vec![Condition::Cookie {
                    name: "x-beta-access".into(),
                    equals: "true".into(),
                }],
                "ecs-beta",
            ),
        ];
        let mut h = HeaderMap::new();
        assert!(first_match(&rules, &facts(&h, "/", None)).is_none());
        h.insert("x-dev-mode", "true".parse().unwrap());
        h.insert("cookie", "a=1; X-Beta-Access=true".parse().unwrap());
        assert_eq!(
            first_match(&rules, &facts(&h, "/", None)).unwrap().group,
            "ecs"
        );
        h.insert("x-dev-mode", "TRUE".parse().unwrap());
        assert_eq!(
            first_match(&rules, &facts(&h, "/", None)).unwrap().group,
            "ecs-beta"
        );
    }

    #[test]
    fn conditions() {
        let mut h = HeaderMap::new();
        h.append("x-tier", "gold".parse().unwrap());
        h.append("x-tier", "silver".parse().unwrap());
        let f = facts(&h, "/img/a.png", Some("v=2&name=caf%C3%A9+x"));
        assert!(header("x-tier", ValueTest::Equals("silver".into())).holds(&f));
        assert!(header(
            "X-Tier",
            ValueTest::Matches(regex::Regex::new("^go").unwrap())
        )
        .holds(&f));
        assert!(header("x-other", ValueTest::Present(false)).holds(&f));
        assert!(!header("x-other", ValueTest::Present(true)).holds(&f));
        let q = Condition::Query {
            name: "name".into(),
            equals: "café x".into(),
        };
        assert!(q.holds(&f));
        assert!(Condition::PathPrefix("/img".into()).holds(&f));
        assert!(!Condition::PathPrefix("/im".into()).holds(&f));
        assert!(Condition::ClientIn(vec!["10.0.0.0/8".parse().unwrap()]).holds(&f));
        assert!(!Condition::ClientIn(vec!["192.168.0.0/16".parse().unwrap()]).holds(&f));
        assert!(!Condition::Method(vec![Method::POST]).holds(&f));
    }

    #[test]
    fn rules_behind_a_wider_rule_are_unreachable() {
        let rules = vec![
            rule(vec![Condition::PathPrefix("/api".into())], "a"),
            rule(
                vec![
                    Condition::PathPrefix("/api/v2".into()),
                    header("x-dev-mode", ValueTest::Equals("true".into())),
                ],
                "b",
            ),
            rule(vec![header("x-dev-mode", ValueTest::Present(true))], "c"),
            rule(
                vec![header("x-dev-mode", ValueTest::Equals("1".into()))],
                "d",
            ),
            rule(vec![], "e"),
            rule(vec![Condition::Method(vec![Method::GET])], "f"),
        ];
        assert_eq!(unreachable(&rules), vec![(1, 0), (3, 2), (5, 4)]);
    }
}
