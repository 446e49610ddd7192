//! The signatures `#[service]` accepts: each trait method read into a
//! [`Method`], with an error spanned on whatever it cannot take.

use proc_macro2::Span;
use syn::spanned::Spanned;
use syn::{Expr, FnArg, GenericArgument, Ident, Pat, PathArguments, ReturnType, TraitItemFn, Type};

/// What a method returns once its `Result` is unwrapped.
pub(super) enum Returns {
    Nothing,
    Value(Type),
    Stream { header: Option<Type> },
}

pub(super) struct Param {
    pub(super) ident: Ident,
    pub(super) wire_name: String,
    pub(super) ty: Type,
    pub(super) default: Option<Expr>,
}

pub(super) struct Method {
    pub(super) ident: Ident,
    pub(super) name: String,
    pub(super) params: Vec<Param>,
    pub(super) ctx_position: Option<usize>,
    pub(super) returns: Returns,
    pub(super) is_async: bool,
}

pub(super) fn parse_method(func: &mut TraitItemFn) -> syn::Result<Method> {
    let sig = &mut func.sig;
    if func.default.is_some() {
        return Err(syn::Error::new(
            sig.ident.span(),
            "service methods are declared without a body",
        ));
    }
    if !sig.generics.params.is_empty() {
        return Err(syn::Error::new(
            sig.generics.span(),
            "service methods cannot be generic",
        ));
    }
    let mut inputs = sig.inputs.iter_mut();
    match inputs.next() {
        Some(FnArg::Receiver(receiver))
            if receiver.reference.is_some() && receiver.mutability.is_none() => {}
        _ => {
            return Err(syn::Error::new(
                sig.ident.span(),
                "service methods take `&self` first",
            ));
        }
    }
    let mut params = Vec::new();
    let mut ctx_position = None;
    let mut type_errors: Option<syn::Error> = None;
    for (position, input) in inputs.enumerate() {
        let FnArg::Typed(typed) = input else {
            return Err(syn::Error::new(input.span(), "unexpected receiver"));
        };
        let default = take_default(&mut typed.attrs)?;
        if is_context(&typed.ty) {
            if default.is_some() {
                return Err(syn::Error::new(
                    typed.span(),
                    "the context takes no default",
                ));
            }
            ctx_position = Some(position);
            continue;
        }
        let Pat::Ident(pat) = typed.pat.as_ref() else {
            return Err(syn::Error::new(
                typed.pat.span(),
                "parameters must be plain names: the name is the Arrow column name",
            ));
        };
        if let Err(err) = check_wire_type(&typed.ty) {
            match &mut type_errors {
                Some(all) => all.combine(err),
                None => type_errors = Some(err),
            }
        }
        let ident = pat.ident.clone();
        params.push(Param {
            wire_name: ident.to_string().trim_start_matches("r#").to_owned(),
            ident,
            ty: (*typed.ty).clone(),
            default,
        });
    }
    let returns = parse_return(&sig.output);
    let returns = match (type_errors, returns) {
        (None, returns) => returns?,
        (Some(errors), Ok(_)) => return Err(errors),
        (Some(mut errors), Err(err)) => {
            errors.combine(err);
            return Err(errors);
        }
    };
    let is_async = sig.asyncness.take().is_some();
    if is_async {
        // A `Send` future lets any transport await the method on any
        // runtime thread; implementations still write `async fn`.
        let output = match &sig.output {
            ReturnType::Type(_, ty) => ty.clone(),
            ReturnType::Default => unreachable!("parse_return refused a missing return type"),
        };
        sig.output = syn::parse_quote! {
            -> impl ::core::future::Future<Output = #output> + ::core::marker::Send
        };
    }
    Ok(Method {
        is_async,
        name: sig.ident.to_string(),
        ident: sig.ident.clone(),
        params,
        ctx_position,
        returns,
    })
}

/// Removes `#[default(expr)]` from a parameter, returning the expression.
fn take_default(attrs: &mut Vec<syn::Attribute>) -> syn::Result<Option<Expr>> {
    let mut found = None;
    let mut error = None;
    attrs.retain(|attr| {
        if !attr.path().is_ident("default") {
            return true;
        }
        match attr.parse_args::<Expr>() {
            Ok(expr) => found = Some(expr),
            Err(err) => error = Some(err),
        }
        false
    });
    match error {
        Some(err) => Err(err),
        None => Ok(found),
    }
}

fn is_context(ty: &Type) -> bool {
    let Type::Reference(reference) = ty else {
        return false;
    };
    let Type::Path(path) = reference.elem.as_ref() else {
        return false;
    };
    path.path
        .segments
        .last()
        .is_some_and(|segment| segment.ident == "CallContext")
}

fn parse_return(output: &ReturnType) -> syn::Result<Returns> {
    let error = |span: Span| {
        syn::Error::new(
            span,
            "service methods return `Result<T, E>` where E converts into vgirpc::RpcError \
             (or a `Result` alias such as `anyhow::Result<T>` or `io::Result<T>`)",
        )
    };
    let ReturnType::Type(_, ty) = output else {
        return Err(error(output.span()));
    };
    let ok = result_ok_type(ty).ok_or_else(|| error(ty.span()))?;
    if let Type::Tuple(tuple) = &ok
        && tuple.elems.is_empty()
    {
        return Ok(Returns::Nothing);
    }
    if let Type::Path(path) = &ok
        && let Some(last) = path.path.segments.last()
        && last.ident == "Stream"
    {
        let header = match &last.arguments {
            PathArguments::None => None,
            PathArguments::AngleBracketed(args) => match args.args.first() {
                Some(GenericArgument::Type(h)) if args.args.len() == 1 => Some(h.clone()),
                _ => return Err(syn::Error::new(args.span(), "expected `Stream<Header>`")),
            },
            PathArguments::Parenthesized(p) => {
                return Err(syn::Error::new(p.span(), "expected `Stream<Header>`"));
            }
        };
        return Ok(Returns::Stream { header });
    }
    check_wire_type(&ok)?;
    Ok(Returns::Value(ok))
}

/// `T` of `Result<T, E>`, or of an alias named `…Result<T>` that fixes the
/// error type (`anyhow::Result<T>`, `io::Result<T>`, `MyResult<T>`).
fn result_ok_type(ty: &Type) -> Option<Type> {
    let Type::Path(path) = ty else { return None };
    let last = path.path.segments.last()?;
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let arity_fits = match args.args.len() {
        2 => last.ident == "Result",
        1 => last.ident.to_string().ends_with("Result"),
        _ => false,
    };
    if !arity_fits {
        return None;
    }
    match args.args.first()? {
        GenericArgument::Type(t) => Some(t.clone()),
        _ => None,
    }
}

/// Refuses, with the fix, the types that never have an Arrow form;
/// every other type is left to the `ArrowValue` bound, whose error lists
/// what is supported.
fn check_wire_type(ty: &Type) -> syn::Result<()> {
    let refuse = |hint: &str| Err(syn::Error::new(ty.span(), hint.to_owned()));
    match ty {
        Type::Reference(reference) => {
            let is_str = matches!(&*reference.elem, Type::Path(p) if p.path.is_ident("str"));
            if is_str {
                refuse("parameters and results are owned values: use `String` instead of `&str`")
            } else if matches!(&*reference.elem, Type::Slice(_)) {
                refuse("parameters and results are owned values: use `Vec<T>` instead of a slice")
            } else {
                refuse(
                    "parameters and results are owned values: take the type itself, not a reference",
                )
            }
        }
        Type::Tuple(tuple) if !tuple.elems.is_empty() => {
            refuse("tuples have no Arrow type: use a struct with `#[derive(vgirpc::ArrowStruct)]`")
        }
        Type::Array(_) => refuse(
            "arrays have no Arrow type of their own: use `Vec<T>`, or \
             `vgirpc::FixedBinary<N>` for fixed-size bytes",
        ),
        Type::Path(path) if path.path.is_ident("usize") || path.path.is_ident("isize") => refuse(
            "`usize` and `isize` have no fixed width on the wire: use `u64` or `i64` \
             (or a narrower fixed-width integer)",
        ),
        Type::Path(path) if path.path.is_ident("char") => {
            refuse("`char` has no Arrow type: use `String`")
        }
        _ => Ok(()),
    }
}
