//! Every error the vgirpc macros emit, each made by a small program in
//! `tests/compile_fail/`, with the compiler's output committed beside it:
//! a change to a message, its span or its wording shows up in review.

#[test]
fn macro_errors_name_the_problem_where_it_is() {
    let cases = trybuild::TestCases::new();
    cases.compile_fail("tests/compile_fail/*.rs");
}
