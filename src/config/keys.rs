//! The keys a configuration file's `pool` objects may hold, each declared once (its JSON
//! name, the setting it sets, its type and how its value is read) in the table below; the
//! parsing, the server-over-top-level merge and the applying are generated from it.

use std::time::Duration;

use serde_json::{Map, Value};

use super::settings::{Generation, PoolSettings, RetryPolicy, ServerConfig, Sharing};
use super::text::duration_from_secs;
use crate::protocol::LogLevel;

/// The settings that apply to the whole pool, not one server.
#[derive(Debug, Default, Clone)]
pub(crate) struct Whole {
    pub max_children: Option<usize>,
    pub warm_eagerly: Option<bool>,
}

/// Where a key's setting lives.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// `PoolSettings`: how the pool runs a server's sessions.
    Settings,
    /// `ServerConfig`: how one session behaves.
    Config,
    /// The whole pool: top level only.
    Pool,
}

macro_rules! pool_keys {
    ($($json:literal => $place:ident . $field:ident : $ty:ty = $read:expr;)*) => {
        /// What a `pool` object says; `None` where it says nothing.
        #[derive(Debug, Default, Clone)]
        pub(crate) struct PoolKeys {
            $(pub(crate) $field: Option<$ty>,)*
        }

        impl PoolKeys {
            /// Every key: its JSON name and where it goes.
            const KEYS: &'static [(&'static str, Place)] = &[$(($json, place!($place))),*];

            /// Reads one key's value (`None`: not a key of ours; `null` leaves it unset,
            /// except where `null` means something, like `keepaliveSecs`).
            fn read(&mut self, key: &str, value: &Value) -> Option<Result<(), String>> {
                match key {
                    $($json => Some(($read)(value).map(|v| {
                        if let Some(v) = v {
                            self.$field = Some(v);
                        }
                    })),)*
                    _ => None,
                }
            }

            /// These keys as defaults, `over`'s where it has them.
            pub(crate) fn overlay(&self, over: &PoolKeys) -> PoolKeys {
                PoolKeys {
                    $($field: over.$field.clone().or_else(|| self.$field.clone()),)*
                }
            }

            /// Sets what the keys say.
            pub(crate) fn apply(&self, settings: &mut PoolSettings, config: &mut ServerConfig, whole: &mut Whole) {
                $(if let Some(v) = &self.$field {
                    set!($place, settings, config, whole, $field, v);
                })*
            }
        }
    };
}

macro_rules! place {
    (settings) => {
        Place::Settings
    };
    (config) => {
        Place::Config
    };
    (pool) => {
        Place::Pool
    };
}

macro_rules! set {
    (settings, $s:ident, $c:ident, $w:ident, $f:ident, $v:ident) => {
        $s.$f = $v.clone()
    };
    (config, $s:ident, $c:ident, $w:ident, $f:ident, $v:ident) => {
        $c.$f = $v.clone()
    };
    (pool, $s:ident, $c:ident, $w:ident, $f:ident, $v:ident) => {
        $w.$f = Some($v.clone())
    };
}

pool_keys! {
    "maxSessions" => settings.max_sessions: usize = count;
    "minSessions" => settings.min_sessions: usize = count;
    "maxInFlight" => settings.max_in_flight: usize = count;
    "queueTimeoutSecs" => settings.queue_timeout: Duration = secs;
    "idleTimeoutSecs" => settings.idle_timeout: Duration = secs;
    "maxLifetimeSecs" => settings.max_lifetime: Duration = secs;
    "lifetimeJitterSecs" => settings.lifetime_jitter: Duration = secs;
    "keepaliveSecs" => settings.keepalive: Option<Duration> = secs_or_off;
    "retry" => settings.retry: RetryPolicy = retry;
    "failureThreshold" => settings.failure_threshold: u32 = count_u32;
    "cooldownSecs" => settings.cooldown: Duration = secs;
    "backoffBaseSecs" => settings.backoff_base: Duration = secs;
    "backoffMaxSecs" => settings.backoff_max: Duration = secs;
    "direct" => settings.direct: bool = boolean;
    "probeTimeoutSecs" => settings.probe_timeout: Duration = secs;
    "sharing" => settings.sharing: Sharing = sharing;
    "requestTimeoutSecs" => config.request_timeout: Duration = secs;
    "maxRequestTimeoutSecs" => config.max_request_timeout: Duration = secs;
    "startTimeoutSecs" => config.start_timeout: Duration = secs;
    "discoverTimeoutSecs" => config.discover_timeout: Duration = secs;
    "closeGraceSecs" => config.close_grace: Duration = secs;
    "maxMessageBytes" => config.max_message_size: usize = count;
    "generation" => config.generation: Generation = generation;
    "inheritEnv" => config.inherit_env: bool = boolean;
    "maxInputRounds" => config.max_input_rounds: usize = count;
    "validateOutput" => config.validate_output: bool = boolean;
    "tasks" => config.tasks: bool = boolean;
    "logLevel" => config.log_level: Option<LogLevel> = log_level;
    "maxChildren" => pool.max_children: usize = count;
    "warmEagerly" => pool.warm_eagerly: bool = boolean;
}

/// A `pool` object: the top-level one (`server` is `None`) or a server's. Unknown keys and
/// whole-pool keys in a server's object become warnings; a bad value is an error naming
/// the key.
pub(crate) fn parse(
    map: &Map<String, Value>,
    server: Option<&str>,
    warnings: &mut Vec<String>,
) -> Result<PoolKeys, String> {
    let place = match server {
        Some(name) => format!("the `pool` of server `{name}`"),
        None => "the top-level `pool`".to_owned(),
    };
    let mut keys = PoolKeys::default();
    for (key, value) in map {
        let whole = PoolKeys::KEYS
            .iter()
            .any(|(k, p)| k == key && *p == Place::Pool);
        if whole && server.is_some() {
            warnings.push(format!(
                "`{key}` in {place} is ignored: it applies to the whole pool (set it in the \
                 top-level `pool`)"
            ));
            continue;
        }
        match keys.read(key, value) {
            Some(Ok(())) => {}
            Some(Err(what)) => return Err(format!("`pool.{key}` {what}")),
            None => warnings.push(format!("unknown key `{key}` in {place}")),
        }
    }
    Ok(keys)
}

/// The documented keys, for tests and messages.
#[cfg(test)]
pub(crate) fn names() -> Vec<&'static str> {
    PoolKeys::KEYS.iter().map(|(k, _)| *k).collect()
}

/// `Ok(None)` for `null` (absent); otherwise `read` the value.
fn unless_null<T>(
    v: &Value,
    read: impl FnOnce(&Value) -> Result<T, String>,
) -> Result<Option<T>, String> {
    if v.is_null() {
        return Ok(None);
    }
    read(v).map(Some)
}

fn count(v: &Value) -> Result<Option<usize>, String> {
    unless_null(v, |v| {
        v.as_u64()
            .and_then(|n| usize::try_from(n).ok())
            .ok_or_else(|| format!("must be a non-negative integer, not {v}"))
    })
}

fn count_u32(v: &Value) -> Result<Option<u32>, String> {
    unless_null(v, |v| {
        v.as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| format!("must be an integer from 0 to {}", u32::MAX))
    })
}

fn boolean(v: &Value) -> Result<Option<bool>, String> {
    unless_null(v, |v| {
        v.as_bool()
            .ok_or_else(|| format!("must be true or false, not {v}"))
    })
}

fn one_of(v: &Value, accepted: &[&str]) -> String {
    let accepted: Vec<String> = accepted.iter().map(|a| format!("\"{a}\"")).collect();
    format!("must be one of {}, not {v}", accepted.join(", "))
}

fn duration(v: &Value) -> Result<Duration, String> {
    match v.as_f64() {
        Some(x) => duration_from_secs(x).map_err(|why| format!("{why}, not {v}")),
        None => Err(format!("must be a number of seconds, not {v}")),
    }
}

/// A duration given as a JSON number of seconds.
fn secs(v: &Value) -> Result<Option<Duration>, String> {
    unless_null(v, duration)
}

/// Seconds, or `null` to switch it off (so `null` is not "absent" here).
fn secs_or_off(v: &Value) -> Result<Option<Option<Duration>>, String> {
    if v.is_null() {
        return Ok(Some(None));
    }
    duration(v).map(|d| Some(Some(d)))
}

fn retry(v: &Value) -> Result<Option<RetryPolicy>, String> {
    unless_null(v, |v| match v.as_str() {
        Some("never") => Ok(RetryPolicy::Never),
        Some("safe") => Ok(RetryPolicy::Safe),
        Some("always") => Ok(RetryPolicy::Always),
        _ => Err(one_of(v, &["never", "safe", "always"])),
    })
}

fn log_level(v: &Value) -> Result<Option<Option<LogLevel>>, String> {
    unless_null(v, |v| {
        serde_json::from_value::<LogLevel>(v.clone())
            .map(Some)
            .map_err(|_| {
                one_of(
                    v,
                    &[
                        "debug",
                        "info",
                        "notice",
                        "warning",
                        "error",
                        "critical",
                        "alert",
                        "emergency",
                    ],
                )
            })
    })
}

fn sharing(v: &Value) -> Result<Option<Sharing>, String> {
    unless_null(v, |v| match v.as_str() {
        Some("shared") => Ok(Sharing::Shared),
        Some("per-caller") => Ok(Sharing::PerCaller),
        _ => Err(one_of(v, &["shared", "per-caller"])),
    })
}

fn generation(v: &Value) -> Result<Option<Generation>, String> {
    unless_null(v, |v| match v.as_str() {
        Some("auto") => Ok(Generation::Auto),
        Some("handshake") => Ok(Generation::Handshake),
        Some("per-request") => Ok(Generation::PerRequest),
        _ => Err(one_of(v, &["auto", "handshake", "per-request"])),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn keys(v: Value, server: Option<&str>) -> (Result<PoolKeys, String>, Vec<String>) {
        let mut w = Vec::new();
        (parse(v.as_object().unwrap(), server, &mut w), w)
    }

    #[test]
    fn counts_durations_and_enums() {
        assert_eq!(count(&json!(4)).unwrap(), Some(4));
        assert!(count(&json!(-1)).is_err());
        assert!(count(&json!(1.5)).is_err());
        assert!(count(&json!("4")).is_err());
        assert_eq!(count(&Value::Null).unwrap(), None);
        assert_eq!(secs(&json!(2)).unwrap(), Some(Duration::from_secs(2)));
        assert!(secs(&json!("2")).unwrap_err().contains("number"));
        assert!(secs(&json!(-0.5)).unwrap_err().contains("negative"));
        assert_eq!(secs_or_off(&Value::Null).unwrap(), Some(None));
        assert_eq!(
            one_of(&json!("x"), &["a", "b"]),
            "must be one of \"a\", \"b\", not \"x\""
        );
        assert_eq!(retry(&json!("never")).unwrap(), Some(RetryPolicy::Never));
        assert_eq!(
            sharing(&json!("per-caller")).unwrap(),
            Some(Sharing::PerCaller)
        );
        assert_eq!(
            sharing(&json!("private")).unwrap_err(),
            "must be one of \"shared\", \"per-caller\", not \"private\""
        );
    }

    #[test]
    fn the_servers_keys_win_over_the_top_level() {
        let (top, w) = keys(
            json!({"maxSessions": 2, "minSessions": 1, "keepaliveSecs": 10}),
            None,
        );
        assert!(w.is_empty(), "{w:?}");
        let (server, w) = keys(json!({"maxSessions": 5, "keepaliveSecs": null}), Some("s"));
        assert!(w.is_empty(), "{w:?}");
        let merged = top.as_ref().unwrap().overlay(&server.unwrap());
        assert_eq!(merged.max_sessions, Some(5));
        assert_eq!(merged.min_sessions, Some(1));
        assert_eq!(merged.keepalive, Some(None));
        let (mut settings, mut config, mut whole) = (
            PoolSettings::default(),
            ServerConfig::new("s", "x"),
            Whole::default(),
        );
        merged.apply(&mut settings, &mut config, &mut whole);
        assert_eq!((settings.max_sessions, settings.keepalive), (5, None));
        top.unwrap().apply(&mut settings, &mut config, &mut whole);
        assert_eq!(settings.keepalive, Some(Duration::from_secs(10)));
    }

    #[test]
    fn whole_pool_keys_in_a_server_are_warned_about() {
        let (k, w) = keys(json!({"maxChildren": 3, "color": 1}), Some("s"));
        assert!(k.unwrap().max_children.is_none());
        assert_eq!(w.len(), 2, "{w:?}");
        assert!(w.iter().any(|w| w.contains("`maxChildren` in the `pool` of server `s` is ignored: it applies to the whole pool")), "{w:?}");
        assert!(w.iter().any(|w| w.contains("unknown key `color`")), "{w:?}");
        let (k, _) = keys(json!({"maxSessions": "x"}), None);
        assert_eq!(
            k.unwrap_err(),
            "`pool.maxSessions` must be a non-negative integer, not \"x\""
        );
        assert!(names().contains(&"probeTimeoutSecs"));
    }
}
