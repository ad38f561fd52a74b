"""Lexical search over the articles' questions and titles: answers keep coming when Rasa is down.

Two things make it reach past the exact wording of the training questions (measured by cross-validation on the
training data, docs/BENCHMARKS.md): a concept lexicon (nlu/concepts.yml and the entity forms of entities.yml), so
"cut", "commission" and "کٹوتی" meet on one feature across the three scripts; and a score that mixes the nearest
training question with the article's questions pooled, so a message that borrows words from several questions of
one article still finds it.

A linear SVM over the same features adds what the cosine cannot learn: which trigrams tell two neighbouring
articles apart (the cosine weighs every shared trigram alike). It trains in about half a second when the search
is built.
"""

from __future__ import annotations

import math
import re
import time
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import yaml

from content.library import Library
from nlu.entities import extract_entities, load_surface_forms
from nlu.examples import NLU_DIR
from nlu.examples import intent_examples as load_intent_examples
from nlu.script import consonant_skeleton, with_urdu_letters
from nlu.understanding import ArticleCandidate, Understanding

NGRAM = 3
# Below this score the lexical search alone (Rasa down) says "I don't know" rather than answer. With the learned
# ranker and the consonant skeletons, 0.25 puts the right article first for 0.776 of held-back questions and refuses
# 0.868 of out-of-scope ones (3-fold cross-validation; without the skeletons 0.747 and 0.822; the cosine alone at
# 0.3 did 0.686 and 0.721).
MIN_SCORE = 0.25
# A concept counts as much as this many character trigrams; the nearest question's share of the score (the rest is
# the pooled questions'). Both chosen by 3-fold cross-validation on the training data (CONCEPT_WEIGHT 1.5-3 and
# NEAREST_SHARE 0.2-0.4 were within 0.015 of each other in top-1 accuracy).
CONCEPT_WEIGHT = 2.0
NEAREST_SHARE = 0.4
# Consonant-skeleton features (nlu/script.py) let "paisay", "پیسے" and "paise" meet: trigrams of each word's skeleton,
# and 4-grams across the message's skeleton with the spaces taken out, for loanwords Urdu script writes as two words
# ("اپ ورک", "فری لانسنگ"). Only the learned ranker sees them: short skeletons are common, so they would make the
# cosine's postings long (rank time 1.4 -> 2.8 ms) for no gain. By 3-fold cross-validation on the training data,
# with C below: lexical top-1 0.755 -> 0.789, Urdu script 0.728 -> 0.790 (docs/BENCHMARKS.md, round 9).
SKELETON_WEIGHT = 1.5
JOINED_SKELETON_WEIGHT = 1.0
JOINED_NGRAM = 4
# The learned ranker's share of the score, and its SVM's C, by 3-fold cross-validation on the training data: round 8
# chose (0.7, 1.0); with the skeletons' many more features a looser fit is better (C 1 -> 3: 0.775 -> 0.789; 2 and 4
# were within 0.006; share 0.6-0.8 within 0.009).
LEARNED_SHARE = 0.7
SVM_C = 3.0
CONCEPTS_FILE = NLU_DIR / "concepts.yml"
_NON_WORD = re.compile(r"[^\w\s]")
# Urdu vowel marks (zer, zabar, pesh...) and the zero-width non-joiner are optional in writing: dropped, not spaces
_OPTIONAL_MARKS = re.compile("[\u064b-\u065f\u0670\u200c]")


def words_of(text: str) -> list[str]:
    return _NON_WORD.sub(" ", _OPTIONAL_MARKS.sub("", with_urdu_letters(text.casefold()))).split()


class ConceptLexicon:
    """Surface forms in English, Roman Urdu and Urdu script -> concept names ("fee", "withdraw", "fiverr"...)."""

    def __init__(self, forms: dict[str, list[str]]) -> None:
        self._exact: dict[str, set[str]] = defaultdict(set)
        self._prefixes: dict[str, list[tuple[str, str]]] = defaultdict(list)  # first letter -> (prefix, concept)
        self._phrases: dict[str, list[tuple[tuple[str, ...], bool, str]]] = defaultdict(list)
        for concept, surface_forms in forms.items():
            for form in surface_forms:
                prefix = str(form).endswith("*")
                words = tuple(words_of(str(form).rstrip("*")))
                if not words:
                    continue
                if len(words) > 1:
                    self._phrases[words[0]].append((words[1:], prefix, concept))
                elif prefix:
                    self._prefixes[words[0][0]].append((words[0], concept))
                else:
                    self._exact[words[0]].add(concept)

    @classmethod
    def load(cls, concepts: Path = CONCEPTS_FILE) -> ConceptLexicon:
        """The hand-written concepts, plus every platform and payment method with its spellings (entities.yml)."""
        raw = yaml.safe_load(concepts.read_text(encoding="utf-8")) or {}
        forms = {str(name): [str(form) for form in surface_forms] for name, surface_forms in raw.items()}
        for entity_form in load_surface_forms():
            forms.setdefault(entity_form.value, [entity_form.value]).append(entity_form.text)
        return cls(forms)

    def find(self, words: Sequence[str]) -> set[str]:
        found: set[str] = set()
        for index, word in enumerate(words):
            found |= self._exact.get(word, set())
            found.update(concept for prefix, concept in self._prefixes.get(word[0], ()) if word.startswith(prefix))
            for rest, prefix, concept in self._phrases.get(word, ()):
                following = words[index + 1 : index + 1 + len(rest)]
                if len(following) == len(rest) and following[:-1] == list(rest[:-1]):
                    last = following[-1]
                    if last.startswith(rest[-1]) if prefix else last == rest[-1]:
                        found.add(concept)
        return found


Features = dict[str, float]


def features(text: str, lexicon: ConceptLexicon) -> Features:
    """Character trigrams inside word boundaries, plus one weighted feature per concept the text mentions."""
    words = words_of(text)
    grams: Features = defaultdict(float)
    for word in words:
        padded = f" {word} "
        for i in range(max(1, len(padded) - NGRAM + 1)):
            grams[padded[i : i + NGRAM]] += 1.0
    for concept in lexicon.find(words):
        grams[f"concept:{concept}"] = CONCEPT_WEIGHT
    return grams


def skeleton_features(text: str) -> Features:
    """Trigrams of each word's consonant skeleton, and 4-grams of the whole message's skeleton without spaces.

    Each counts once: "xxxxxxxx" has the skeleton "ksksks…", whose repeated grams would otherwise outweigh the rest
    of the message.
    """
    grams: Features = defaultdict(float)
    skeletons = [consonant_skeleton(word) for word in words_of(text)]
    for skeleton in skeletons:
        if len(skeleton) >= 2:
            padded = f"<{skeleton}>"
            for i in range(len(padded) - NGRAM + 1):
                grams[f"k:{padded[i : i + NGRAM]}"] = SKELETON_WEIGHT
    joined = "".join(skeletons)
    for i in range(len(joined) - JOINED_NGRAM + 1):
        grams[f"j:{joined[i : i + JOINED_NGRAM]}"] = JOINED_SKELETON_WEIGHT
    return grams


def inverse_document_frequency(documents: Sequence[tuple[str, Features]]) -> dict[str, float]:
    """Smoothed IDF, as scikit-learn's TfidfVectorizer computes it."""
    document_frequency: Counter[str] = Counter()
    for _, grams in documents:
        document_frequency.update(grams.keys())
    total = len(documents) or 1
    return {gram: math.log((1 + total) / (1 + df)) + 1 for gram, df in document_frequency.items()}


def unit_tfidf(grams: Features, idf: dict[str, float]) -> Features:
    """The TF-IDF vector of `grams` over the grams `idf` knows, scaled to length 1 (empty when none is known)."""
    weights = {gram: count * idf[gram] for gram, count in grams.items() if gram in idf}
    norm = math.sqrt(sum(w * w for w in weights.values()))
    return {gram: weight / norm for gram, weight in weights.items()} if norm else {}


class _CosineIndex:
    """TF-IDF vectors of documents, each owned by an article id (or `intent:<name>`); cosine by postings.

    Documents are stored grouped by owner, so the best document of each owner is a max over a slice.
    """

    def __init__(self, documents: Sequence[tuple[str, Features]]) -> None:
        documents = sorted(documents, key=lambda document: document[0])
        self.idf = inverse_document_frequency(documents)
        postings: dict[str, tuple[list[int], list[float]]] = defaultdict(lambda: ([], []))
        self._owners: list[tuple[str, int, int]] = []  # owner, first document, end
        for index, (owner, grams) in enumerate(documents):
            for gram, weight in unit_tfidf(grams, self.idf).items():
                postings[gram][0].append(index)
                postings[gram][1].append(weight)
            if self._owners and self._owners[-1][0] == owner:
                self._owners[-1] = (owner, self._owners[-1][1], index + 1)
            else:
                self._owners.append((owner, index, index + 1))
        self._postings = dict(postings)
        self._size = len(documents)

    def best_per_owner(self, grams: Features) -> dict[str, float]:
        query = unit_tfidf(grams, self.idf)
        if not query:
            return {}
        scores = [0.0] * self._size
        for gram, weight in query.items():
            indices, doc_weights = self._postings[gram]
            for index, doc_weight in zip(indices, doc_weights, strict=True):
                scores[index] += weight * doc_weight
        best = {owner: max(scores[first:end]) for owner, first, end in self._owners}
        return {owner: score for owner, score in best.items() if score > 0}


class _LearnedRanker:
    """One-vs-rest linear SVM over the documents' TF-IDF vectors, one class per owner.

    Its margin m is mapped to a score in [0, 1] as (m + 1) / 2, clipped: the SVM's own "no" (-1) is 0, "yes" (+1)
    is 1, so it mixes with the cosine on the same scale.
    """

    def __init__(self, documents: Sequence[tuple[str, Features]]) -> None:
        # imported here: scikit-learn takes about 1.5 s to import, which only the index build should pay
        from scipy.sparse import csr_matrix
        from sklearn.svm import LinearSVC

        self._idf = inverse_document_frequency(documents)
        self._column = {gram: column for column, gram in enumerate(sorted(self._idf))}
        rows: list[int] = []
        columns: list[int] = []
        values: list[float] = []
        for row, (_, grams) in enumerate(documents):
            found, weights = self._weights(grams)
            rows.extend([row] * len(found))
            columns.extend(found)
            values.extend(weights)
        matrix = csr_matrix((values, (rows, columns)), shape=(len(documents), len(self._column)))
        model = LinearSVC(C=SVM_C, random_state=0, max_iter=5000).fit(matrix, [owner for owner, _ in documents])
        self.owners: list[str] = [str(owner) for owner in model.classes_]
        coefficients, intercepts = model.coef_, model.intercept_
        if len(self.owners) == 2:  # binary: one separating plane, the second owner's side positive
            coefficients = np.vstack([-coefficients, coefficients])
            intercepts = np.concatenate([-intercepts, intercepts])
        self._by_feature = np.ascontiguousarray(coefficients.T)  # a query's features pick rows
        self._intercepts = intercepts

    def _weights(self, grams: Features) -> tuple[list[int], list[float]]:
        unit = unit_tfidf(grams, self._idf)
        return [self._column[gram] for gram in unit], list(unit.values())

    def scores(self, grams: Features) -> dict[str, float]:
        columns, weights = self._weights(grams)
        margins = np.asarray(weights) @ self._by_feature[columns] + self._intercepts
        return dict(zip(self.owners, np.clip((margins + 1) / 2, 0.0, 1.0).tolist(), strict=True))

    @classmethod
    def trained(cls, documents: Sequence[tuple[str, Features]]) -> _LearnedRanker | None:
        """None when there is nothing to tell apart (fewer than two owners)."""
        return cls(documents) if len({owner for owner, _ in documents}) >= 2 else None


class LexicalSearch:
    """Character-trigram and concept TF-IDF over every article question and title and every conversational example.

    A document's owner is an article id, or `intent:<name>` for the conversational examples.
    Both come from the same files Rasa trains on (the articles' questions and nlu/data/conversation.yml).
    The index is built on first use (about 2.5 s for 4,000 questions): commands that never read a message
    (`rahnuma outbox`, `broadcast`, `dispatch`) do not pay for it, and the bot builds it at start with `warm()`.
    """

    def __init__(
        self,
        library: Library,
        intent_examples: dict[str, list[str]] | None = None,
        lexicon: ConceptLexicon | None = None,
    ) -> None:
        self._library = library
        self._intent_examples = intent_examples
        self._lexicon = lexicon
        self._index: _Index | None = None

    def warm(self) -> None:
        """Build the index now rather than on the first message."""
        self._built()

    def _built(self) -> _Index:
        if self._index is None:
            self._index = _Index.build(self._library, self._intent_examples, self._lexicon)
        return self._index

    def rank(self, text: str, *, limit: int = 3) -> list[ArticleCandidate]:
        """Best owners first: article ids, or `intent:<name>` when a conversational example is closest."""
        index = self._built()
        grams = features(text, index.lexicon)
        nearest = index.nearest.best_per_owner(grams)
        pooled = index.pooled.best_per_owner(grams)
        scores = {
            owner: NEAREST_SHARE * nearest.get(owner, 0.0) + (1 - NEAREST_SHARE) * pooled.get(owner, 0.0)
            for owner in nearest.keys() | pooled.keys()
        }
        if index.learned is not None and scores:  # no shared feature at all: nothing to rank
            learned = index.learned.scores(grams | skeleton_features(text))
            scores = {
                owner: (1 - LEARNED_SHARE) * scores.get(owner, 0.0) + LEARNED_SHARE * learned.get(owner, 0.0)
                for owner in scores.keys() | learned.keys()
            }
            scores = {owner: score for owner, score in scores.items() if score > 0}
        ranked = sorted(scores.items(), key=lambda item: -item[1])[:limit]
        return [ArticleCandidate(owner, round(score, 4)) for owner, score in ranked]

    def understand(self, text: str, *, reason: str) -> Understanding:
        """An Understanding from lexical similarity alone, marked as the fallback with the reason."""
        started = time.perf_counter()
        ranked = self.rank(text, limit=8)
        articles = [c for c in ranked if not c.article_id.startswith("intent:")][:3]
        top = ranked[0] if ranked else None
        if top is None or top.confidence < MIN_SCORE:
            intent = "nlu_fallback"
        elif top.article_id.startswith("intent:"):
            intent = top.article_id.split(":", 1)[1]
        else:
            intent = "faq"
        return Understanding(
            intent=intent,
            confidence=top.confidence if top else 0.0,
            source="fallback",
            entities=extract_entities(text),
            articles=tuple(articles),
            parse_ms=(time.perf_counter() - started) * 1000,
            degraded_reason=reason,
        )


@dataclass(frozen=True)
class _Index:
    """What LexicalSearch ranks with: the nearest-question and pooled cosine indexes and the learned ranker."""

    lexicon: ConceptLexicon
    nearest: _CosineIndex
    pooled: _CosineIndex
    learned: _LearnedRanker | None

    @classmethod
    def build(
        cls, library: Library, intent_examples: dict[str, list[str]] | None, lexicon: ConceptLexicon | None
    ) -> _Index:
        lexicon = ConceptLexicon.load() if lexicon is None else lexicon
        texts: list[tuple[str, str]] = []  # owner, text
        for article in library:
            texts.extend((article.id, text) for text in (*article.questions, *article.title.values()))
        examples = load_intent_examples() if intent_examples is None else intent_examples
        for intent, intent_texts in examples.items():
            # conversation.yml also holds a few article examples (faq/<id>): they count for that article
            article_id = intent.removeprefix("faq/")
            owner = article_id if intent.startswith("faq/") and article_id in library.articles else f"intent:{intent}"
            texts.extend((owner, text) for text in intent_texts)
        documents = [(owner, features(text, lexicon)) for owner, text in texts]
        pairs = zip(documents, texts, strict=True)
        with_skeletons = [(owner, grams | skeleton_features(text)) for (owner, grams), (_, text) in pairs]
        learned = _LearnedRanker.trained(with_skeletons)
        return cls(lexicon, _CosineIndex(documents), _CosineIndex(_pool(documents)), learned)


def _pool(documents: Iterable[tuple[str, Features]]) -> list[tuple[str, Features]]:
    """One document per owner: all its questions' features added up."""
    pooled: dict[str, Features] = defaultdict(lambda: defaultdict(float))
    for owner, grams in documents:
        for gram, count in grams.items():
            pooled[owner][gram] += count
    return list(pooled.items())
