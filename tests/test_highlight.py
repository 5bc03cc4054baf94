from rag.highlight import highlight


def test_question_words_are_found_whole_and_in_either_script():
    snippet = "山西省煤礦數量達到268座, said the Shanxi bureau; Shanxian is another word."
    ranges = highlight("How many coal mines does 山西 have? Shanxi", snippet)
    assert [snippet[a:b] for a, b in ranges] == ["山西", "Shanxi"]


def test_offsets_stay_exact_after_a_letter_whose_lower_case_is_longer():
    # "İ".lower() is two characters: the offsets after it used to shift by one
    snippet = "Σ. KAPLAN İŞ BANKASI said Garanti"
    [(a, b)] = highlight("What did Garanti say?", snippet)
    assert snippet[a:b] == "Garanti" and b <= len(snippet)
