//! Semantic checks of a config that deserialised: what no type can express (value ranges,
//! which sources carry which stream, files that must exist, names that must be unique).

use eddy_engine::record::StreamRole;

use super::located::{suggest, ConfigError, Located};
use super::PipelineConfig;

/// Every problem of a deserialised config, located in its file.
pub(super) fn check(c: &PipelineConfig, at: &Located) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    let mut err = |path: String, message: String| errors.push(at.error(&path, message));

    if c.pipeline.name.trim().is_empty()
        || !c.pipeline.name.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_')
    {
        err("pipeline.name".into(), format!("`{}` must be non-empty and use only letters, digits, `-` and `_` (it names metrics and the registry directory)", c.pipeline.name));
    }
    if c.pipeline.batch_size == 0 || c.pipeline.batch_size > 1 << 20 {
        err(
            "pipeline.batch_size".into(),
            format!("must be between 1 and 1048576, got {}", c.pipeline.batch_size),
        );
    }

    // Sources: every one must say which stream it carries, and both streams need a source.
    if c.sources.is_empty() {
        err("sources".into(), "no source: add [sources.events] and [sources.labels], or one [sources.NAME] with kind = \"generator\"".into());
    }
    let mut has = [false, false];
    for (name, source) in &c.sources {
        match source.roles(name) {
            Some(roles) => roles.iter().for_each(|r| has[(*r == StreamRole::Labels) as usize] = true),
            None => err(
                format!("sources.{name}"),
                "cannot tell whether this source carries events or labels: name it `events` or `labels`, or set role = \"events\" | \"labels\"".into(),
            ),
        }
        for (key, message) in source.problems() {
            err(format!("sources.{name}.{key}"), message);
        }
        if let Some(path) = source.path() {
            if !path.exists() {
                err(format!("sources.{name}.path"), format!("file `{}` does not exist", path.display()));
            }
        }
    }
    if !c.sources.is_empty() {
        if !has[0] {
            err("sources".into(), "no source carries events (role = \"events\")".into());
        }
        if !has[1] {
            err("sources".into(), "no source carries labels (role = \"labels\")".into());
        }
    }

    for (name, sink) in &c.sinks {
        for (key, message) in sink.problems() {
            err(format!("sinks.{name}.{key}"), message);
        }
        if sink.input(name).is_none() {
            err(
                format!("sinks.{name}"),
                "cannot tell which output this sink receives: name it `predictions`, `dead_letters` or `drift`, or set input = \"predictions\" | \"dead_letters\" | \"drift\"".into(),
            );
        }
    }

    if c.events.key == c.events.time {
        err(
            "events.time".into(),
            format!("the time field must differ from the key field `{}`", c.events.key),
        );
    }
    if let Some(features) = &c.model.features {
        if features.is_empty() {
            err(
                "model.features".into(),
                "must list at least one field (or be left out to use every field)".into(),
            );
        }
        for f in features {
            if f == &c.events.key || f == &c.events.time {
                err(
                    "model.features".into(),
                    format!("`{f}` is the key or time field and cannot be a feature"),
                );
            }
        }
        for declared in c.events.fields.keys() {
            if !features.contains(declared) && !c.events.exclude.contains(declared) {
                let hint = suggest(declared, features)
                    .map(|s| format!(" (did you mean `{s}`?)"))
                    .unwrap_or_default();
                err(format!("events.fields.{declared}"), format!("declared but not in model.features{hint}"));
            }
        }
    }

    for (key, message) in c.join.problems() {
        err(format!("join.{key}"), message);
    }
    for (key, message) in c.evaluation.problems() {
        err(format!("evaluation.{key}"), message);
    }
    for (key, message) in c.model.encoding.problems() {
        err(format!("model.encoding.{key}"), message);
    }
    for (key, message) in c.model.optimizer.problems() {
        err(format!("model.optimizer.{key}"), message);
    }
    let mut names = vec!["champion".to_string()];
    for (i, shadow) in c.model.shadows.iter().enumerate() {
        if names.contains(&shadow.name) {
            err(format!("model.shadows[{i}].name"), format!("slot name `{}` is already used", shadow.name));
        }
        names.push(shadow.name.clone());
        for (key, message) in shadow.optimizer.problems() {
            err(format!("model.shadows[{i}].optimizer.{key}"), message);
        }
    }
    let slots = c.slot_names();
    let windows: Vec<String> = c.windows.keys().cloned().collect();
    for (name, w) in &c.windows {
        if let Err(errors) = w.stats.validate() {
            for e in errors {
                err(format!("windows.{name}.stats"), e.to_string());
            }
        }
    }
    if let Some(r) = &c.reference_drift {
        if let Err(errors) = r.settings.validate() {
            for e in errors {
                err("reference_drift.settings".into(), e.to_string());
            }
        }
    }
    for (name, monitor) in &c.drift {
        if let Err(e) = monitor.resolve(&slots, &windows, c.task()) {
            err(format!("drift.{name}.input"), e.to_string());
        }
        if let Err(e) = monitor.detector.validate() {
            err(format!("drift.{name}.detector"), e.to_string());
        }
    }
    if let Some(p) = &c.promotion {
        if c.model.shadows.is_empty() {
            err(
                "promotion".into(),
                "a promotion gate needs at least one shadow slot ([[model.shadows]])".into(),
            );
        }
        for (key, message) in p.problems(c.task()) {
            err(format!("promotion.{key}"), message);
        }
    }
    if let Some(r) = &c.retrain {
        if !c.model.shadows.iter().any(|s| s.name == r.slot) {
            err(
                "retrain.slot".into(),
                format!(
                    "no shadow slot named `{}`; add [[model.shadows]] name = \"{}\" (shadows: {})",
                    r.slot,
                    r.slot,
                    c.model.shadows.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
                ),
            );
        }
        for d in &r.triggers.on_drift {
            if !c.drift.contains_key(d) {
                let names: Vec<String> = c.drift.keys().cloned().collect();
                let hint = suggest(d, &names).map(|s| format!("; did you mean `{s}`?")).unwrap_or_default();
                err("retrain.triggers.on_drift".into(), format!("no [drift.{d}] monitor{hint}"));
            }
        }
        for (key, message) in r.problems(c.task()) {
            err(format!("retrain.{key}"), message);
        }
    }
    if c.admin.enabled {
        match c.admin.token() {
            None => err("admin.token".into(), "the admin endpoint needs a token (admin.token, or the EDDY_ADMIN_TOKEN environment variable)".into()),
            Some(t) if t.len() < crate::admin::MIN_TOKEN_BYTES => err(
                "admin.token".into(),
                format!(
                    "the admin token is {} bytes long; it must be at least {} (a guessable token opens the endpoint)",
                    t.len(),
                    crate::admin::MIN_TOKEN_BYTES
                ),
            ),
            Some(_) => {}
        }
        if !c.admin.listen.ip().is_loopback() {
            err(
                "admin.listen".into(),
                format!(
                    "{} is not a loopback address; the admin endpoint only binds to localhost",
                    c.admin.listen
                ),
            );
        }
    }
    if let Some(cp) = &c.checkpoint {
        for (key, message) in cp.problems() {
            err(format!("checkpoint.{key}"), message);
        }
        for (name, sink) in &c.sinks {
            if let Some(why) = sink.checkpoint_problem() {
                err(format!("sinks.{name}.kind"), why.to_string());
            }
        }
        for (name, source) in &c.sources {
            if source.reads_stdin() {
                err(
                    format!("sources.{name}.kind"),
                    "stdin cannot resume from a checkpoint (it cannot be re-read); read a file, or leave out [checkpoint]".into(),
                );
            }
        }
    }
    if !c.features.is_empty() {
        // Planned against the events' declared schema: SQL errors carry their line:column.
        for (key, e) in c.features.problems(&c.to_spec().events) {
            err(format!("features.{key}"), e.to_string());
        }
    }
    if c.registry.publish_every_updates == Some(0) {
        err("registry.publish_every_updates".into(), "must be at least 1 (or left out)".into());
    }
    if c.metrics.enabled && !c.metrics.listen.ip().is_loopback() && !c.metrics.allow_public {
        err(
            "metrics.listen".into(),
            format!("{} is not a loopback address; set metrics.allow_public = true to expose metrics beyond this host", c.metrics.listen),
        );
    }
    errors
}
