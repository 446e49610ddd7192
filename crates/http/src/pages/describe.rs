//! The body of the describe page: an index of the methods, then one card
//! per method with its kind, parameters, result and documentation.

use std::fmt::Write as _;

use arrow_schema::Schema;
use vgirpc::wire::describe::{MethodDescription, MethodType};

use super::html::escape;
use vgirpc::wire::pyarrow::{struct_name, type_name};

/// The kind of call a method is, as the page labels it.
pub(crate) fn kind(method: &MethodDescription) -> &'static str {
    match (method.method_type, method.is_exchange) {
        (MethodType::Unary, _) => "unary",
        (MethodType::Stream, Some(true)) => "exchange",
        (MethodType::Stream, Some(false)) => "producer",
        // Which one is only known once the method runs.
        (MethodType::Stream, None) => "stream",
    }
}

fn anchor(method: &MethodDescription) -> String {
    escape(&format!("method-{}", method.name))
}

fn badge(out: &mut String, kind: &str) {
    let _ = write!(out, "<span class=\"kind kind-{kind}\">{kind}</span>");
}

/// Links to every card, each with its kind.
pub(crate) fn index(methods: &[&MethodDescription]) -> String {
    let mut out = String::new();
    for method in methods {
        let _ = write!(
            out,
            "<a href=\"#{}\"><code>{}</code>",
            anchor(method),
            escape(&method.name)
        );
        badge(&mut out, kind(method));
        out.push_str("</a>");
    }
    out
}

/// One method's card.
pub(crate) fn card(method: &MethodDescription) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        "<section class=\"method\" id=\"{}\">\n<div class=\"method-head\"><h2><code>{}</code></h2>",
        anchor(method),
        escape(&method.name)
    );
    badge(&mut out, kind(method));
    if method.header_schema.is_some() {
        badge(&mut out, "header");
    }
    out.push_str("</div>\n");
    if let Some(doc) = &method.doc {
        let _ = writeln!(out, "<p class=\"doc\">{}</p>", escape(doc.trim()));
    }
    out.push_str("<h3>Parameters</h3>\n");
    parameters(&mut out, method);
    out.push_str("<h3>Returns</h3>\n");
    match method.method_type {
        MethodType::Unary if method.has_return => fields_table(&mut out, &method.result_schema),
        MethodType::Unary => out.push_str("<p class=\"none\">No result</p>\n"),
        MethodType::Stream => out.push_str(
            "<p class=\"none\">A stream of batches, whose schema arrives with the stream</p>\n",
        ),
    }
    if let Some(header) = &method.header_schema {
        out.push_str("<h3>Stream header</h3>\n");
        fields_table(&mut out, header);
    }
    out.push_str("</section>\n");
    out
}

fn parameters(out: &mut String, method: &MethodDescription) {
    let fields = method.params_schema.fields();
    if fields.is_empty() {
        out.push_str("<p class=\"none\">No parameters</p>\n");
        return;
    }
    let defaults = Some(&method.param_defaults).filter(|d| !d.is_empty());
    out.push_str("<table>\n<tr><th>Name</th><th>Type</th>");
    if defaults.is_some() {
        out.push_str("<th>Default</th>");
    }
    out.push_str("</tr>\n");
    for field in fields {
        let _ = write!(
            out,
            "<tr><td><code>{}</code></td><td>",
            escape(field.name())
        );
        match method.embedded_params.get(field.name()) {
            Some(schema) => {
                let _ = write!(
                    out,
                    "<code>{}</code> <span class=\"note\">as Arrow IPC bytes</span>",
                    escape(&struct_name(schema))
                );
            }
            None => {
                let _ = write!(
                    out,
                    "<code>{}</code>",
                    escape(&type_name(field.data_type()))
                );
            }
        }
        out.push_str("</td>");
        if let Some(defaults) = defaults {
            match defaults.get(field.name()) {
                Some(value) => {
                    let _ = write!(out, "<td><code>{}</code></td>", escape(value));
                }
                None => out.push_str("<td class=\"none\">required</td>"),
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</table>\n");
}

fn fields_table(out: &mut String, schema: &Schema) {
    out.push_str("<table>\n<tr><th>Name</th><th>Type</th></tr>\n");
    for field in schema.fields() {
        let _ = writeln!(
            out,
            "<tr><td><code>{}</code></td><td><code>{}</code></td></tr>",
            escape(field.name()),
            escape(&type_name(field.data_type()))
        );
    }
    out.push_str("</table>\n");
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Arc;

    use arrow_schema::{DataType, Field};
    use vgirpc::wire::ipc::empty_schema;

    use super::*;

    fn method(name: &str, method_type: MethodType, is_exchange: Option<bool>) -> MethodDescription {
        MethodDescription {
            name: name.into(),
            method_type,
            has_return: method_type == MethodType::Unary,
            params_schema: Arc::new(Schema::new(vec![
                Field::new("a", DataType::Float64, false),
                Field::new("point", DataType::Binary, false),
            ])),
            result_schema: Arc::new(Schema::new(vec![Field::new(
                "result",
                DataType::Utf8,
                false,
            )])),
            header_schema: None,
            is_exchange,
            embedded_params: BTreeMap::from([(
                "point".to_owned(),
                Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, false)])),
            )]),
            doc: None,
            param_defaults: BTreeMap::new(),
        }
    }

    #[test]
    fn kinds_follow_the_describe_flags() {
        assert_eq!(kind(&method("u", MethodType::Unary, None)), "unary");
        assert_eq!(
            kind(&method("p", MethodType::Stream, Some(false))),
            "producer"
        );
        assert_eq!(
            kind(&method("e", MethodType::Stream, Some(true))),
            "exchange"
        );
        assert_eq!(kind(&method("s", MethodType::Stream, None)), "stream");
    }

    #[test]
    fn cards_show_types_defaults_and_escaped_docs() {
        let mut add = method("add", MethodType::Unary, None);
        add.doc = Some("Adds <b>a</b>.".into());
        add.param_defaults = BTreeMap::from([("a".to_owned(), "1.5".to_owned())]);
        let html = card(&add);
        assert!(
            html.contains("<p class=\"doc\">Adds &lt;b&gt;a&lt;/b&gt;.</p>"),
            "{html}"
        );
        assert!(
            html.contains("<td><code>double</code></td><td><code>1.5</code></td>"),
            "{html}"
        );
        assert!(
            html.contains("<code>struct&lt;x: int64 not null&gt;</code>"),
            "{html}"
        );
        assert!(html.contains("<td class=\"none\">required</td>"), "{html}");
        assert!(html.contains("<td><code>result</code></td><td><code>string</code></td>"));

        let mut stream = method("feed", MethodType::Stream, Some(true));
        stream.result_schema = empty_schema();
        stream.header_schema = Some(Arc::new(Schema::new(vec![Field::new(
            "total",
            DataType::Int64,
            false,
        )])));
        let html = card(&stream);
        assert!(
            html.contains("kind-exchange") && html.contains("kind-header"),
            "{html}"
        );
        assert!(html.contains("<h3>Stream header</h3>"), "{html}");
        assert!(
            !html.contains("Default") && !html.contains("class=\"doc\""),
            "{html}"
        );
    }
}
