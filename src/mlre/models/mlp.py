"""A PyTorch multilayer perceptron for tables: numbers standardised, categories embedded,
early stopping on a validation part. Needs the ``deep`` extra (``pip install mlre[deep]``)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator

from mlre.models.families.base import n_threads
from mlre.spec import Task


def _torch():
    import torch

    return torch


class _AdamW:
    """AdamW with torch's functional ``adamw``, the same arithmetic as ``torch.optim.AdamW``.

    The ``torch.optim.Optimizer`` class imports TorchDynamo, and with it SymPy and about 800
    modules, the first time it is used (its methods are wrapped to be skipped by
    ``torch.compile``): 85 MB of memory and 2.5 s that this network, never compiled, has no
    use for.
    """

    def __init__(self, params: list[Any], lr: float, weight_decay: float) -> None:
        torch = _torch()
        self.params, self.lr, self.weight_decay = params, lr, weight_decay
        self.exp_avgs = [torch.zeros_like(p) for p in params]
        self.exp_avg_sqs = [torch.zeros_like(p) for p in params]
        self.steps = [torch.tensor(0.0) for _ in params]

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        torch = _torch()
        from torch.optim.adamw import adamw

        live = [i for i, p in enumerate(self.params) if p.grad is not None]
        with torch.no_grad():
            adamw(
                [self.params[i] for i in live],
                [self.params[i].grad for i in live],
                [self.exp_avgs[i] for i in live],
                [self.exp_avg_sqs[i] for i in live],
                [],
                [self.steps[i] for i in live],
                amsgrad=False,
                beta1=0.9,
                beta2=0.999,
                lr=self.lr,
                weight_decay=self.weight_decay,
                eps=1e-8,
                maximize=False,
            )


class TabularMLP(BaseEstimator):
    """MLP with one embedding per categorical column; scikit-learn interface."""

    def __init__(
        self,
        task: Task = "binary",
        hidden: int = 128,
        layers: int = 2,
        dropout: float = 0.1,
        lr: float = 1e-3,
        weight_decay: float = 1e-5,
        batch_size: int = 256,
        max_epochs: int = 200,
        patience: int = 10,
        seed: int = 0,
    ):
        self.task = task
        self.hidden = hidden
        self.layers = layers
        self.dropout = dropout
        self.lr = lr
        self.weight_decay = weight_decay
        self.batch_size = batch_size
        self.max_epochs = max_epochs
        self.patience = patience
        self.seed = seed

    # ------------------------------------------------------------------ encoding

    def _fit_encoding(self, X: pd.DataFrame) -> None:
        self.cat_cols_ = [c for c in X.columns if isinstance(X[c].dtype, pd.CategoricalDtype)]
        self.num_cols_ = [c for c in X.columns if c not in self.cat_cols_]
        num = X[self.num_cols_].to_numpy(dtype=float) if self.num_cols_ else np.zeros((len(X), 0))
        self.mean_ = np.nanmean(num, axis=0) if num.shape[1] else np.zeros(0)
        self.std_ = np.nanstd(num, axis=0) if num.shape[1] else np.zeros(0)
        self.mean_ = np.nan_to_num(self.mean_)
        self.std_ = np.where(np.nan_to_num(self.std_) > 0, np.nan_to_num(self.std_), 1.0)
        self.cardinality_ = [len(X[c].cat.categories) + 1 for c in self.cat_cols_]

    def _encode(self, X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        num = X[self.num_cols_].to_numpy(dtype=float) if self.num_cols_ else np.zeros((len(X), 0))
        codes = (
            np.stack([X[c].cat.codes.to_numpy() for c in self.cat_cols_], axis=1)
            if self.cat_cols_
            else np.zeros((len(X), 0), dtype=np.int64)
        )
        return self._encode_arrays(num, codes)

    def _encode_arrays(self, num: np.ndarray, codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The network's inputs from the numeric columns (float, NaN missing) and the category
        codes (-1 missing) in the order of ``num_cols_`` and ``cat_cols_``."""
        missing = np.isnan(num)
        num = np.where(missing, 0.0, (num - self.mean_) / self.std_)
        num = np.clip(num, -10, 10)
        dense = np.hstack([num, missing.astype(float)]).astype(np.float32)
        return dense, codes.astype(np.int64) + 1  # 0: missing

    # ------------------------------------------------------------------ network

    def _network(self, n_dense: int, n_out: int, generator: Any = None):
        """The network; ``generator`` seeds its initial weights and its dropout masks.

        Every random draw comes from this fit's own generator, never torch's global one, so fits
        running at the same time in several threads stay reproducible.
        """
        torch = _torch()
        from torch import nn

        embed_dims = [min(16, (c + 1) // 2) for c in self.cardinality_]

        class Dropout(nn.Module):
            def __init__(self, p: float) -> None:
                super().__init__()
                self.p = p

            def forward(self, x):
                if not self.training or self.p <= 0:
                    return x
                keep = torch.empty_like(x).bernoulli_(1 - self.p, generator=generator)
                return x * keep / (1 - self.p)

        class Net(nn.Module):
            def __init__(self, outer: TabularMLP) -> None:
                super().__init__()
                self.embeddings = nn.ModuleList(
                    nn.Embedding(c, d) for c, d in zip(outer.cardinality_, embed_dims, strict=True)
                )
                width = n_dense + sum(embed_dims)
                blocks: list[Any] = []
                for _ in range(outer.layers):
                    blocks += [nn.Linear(width, outer.hidden), nn.ReLU(), Dropout(outer.dropout)]
                    width = outer.hidden
                blocks.append(nn.Linear(width, n_out))
                self.body = nn.Sequential(*blocks)

            def forward(self, dense, cats):
                parts = [dense] + [emb(cats[:, i]) for i, emb in enumerate(self.embeddings)]
                return self.body(torch.cat(parts, dim=1))

        net = Net(self)
        if generator is not None:
            with torch.no_grad():
                for module in net.modules():
                    if isinstance(module, nn.Linear):
                        # the same scheme as nn.Linear's own initialisation
                        nn.init.kaiming_uniform_(module.weight, a=5**0.5, generator=generator)
                        bound = 1 / module.in_features**0.5
                        nn.init.uniform_(module.bias, -bound, bound, generator=generator)
                    elif isinstance(module, nn.Embedding):
                        nn.init.normal_(module.weight, generator=generator)
        return net

    # ------------------------------------------------------------------ fit / predict

    def fit(
        self,
        X: pd.DataFrame,
        y: np.ndarray,
        X_val: pd.DataFrame | None = None,
        y_val: np.ndarray | None = None,
        deadline: float = float("inf"),
    ) -> TabularMLP:
        """Train with AdamW; stop when the validation loss has not improved for ``patience`` epochs."""
        torch = _torch()
        generator = torch.Generator().manual_seed(self.seed)
        torch.set_num_threads(n_threads())
        rng = np.random.default_rng(self.seed)
        if X_val is None:
            order = rng.permutation(len(X))
            cut = max(1, len(X) // 10)
            X_val, y_val = X.iloc[order[:cut]], np.asarray(y)[order[:cut]]
            X, y = X.iloc[order[cut:]], np.asarray(y)[order[cut:]]
        self._fit_encoding(X)
        if self.task == "regression":
            self.y_mean_, self.y_std_ = float(np.mean(y)), float(np.std(y) or 1.0)
            n_out, loss_fn = 1, torch.nn.MSELoss()
        else:
            self.classes_ = np.unique(y)
            n_out, loss_fn = len(self.classes_), torch.nn.CrossEntropyLoss()
        d_tr, c_tr = (torch.from_numpy(a) for a in self._encode(X))
        d_va, c_va = (torch.from_numpy(a) for a in self._encode(X_val))
        t_tr, t_va = self._target(y), self._target(y_val)
        self.net_ = self._network(d_tr.shape[1], n_out, generator)
        opt = _AdamW(list(self.net_.parameters()), lr=self.lr, weight_decay=self.weight_decay)
        best, best_state, waited = float("inf"), None, 0
        n = len(d_tr)
        for _ in range(self.max_epochs):
            self.net_.train()
            for idx in torch.from_numpy(rng.permutation(n)).split(self.batch_size):
                opt.zero_grad()
                loss = loss_fn(self.net_(d_tr[idx], c_tr[idx]), t_tr[idx])
                loss.backward()
                opt.step()
            self.net_.eval()
            with torch.no_grad():
                val = float(loss_fn(self.net_(d_va, c_va), t_va))
            if val < best - 1e-6:
                best, waited = val, 0
                best_state = {k: v.clone() for k, v in self.net_.state_dict().items()}
            else:
                waited += 1
            if waited >= self.patience or time.monotonic() > deadline:
                break
        if best_state is not None:
            self.net_.load_state_dict(best_state)
        self.net_.eval()
        return self

    def _target(self, values: Any):
        torch = _torch()
        if self.task == "regression":
            scaled = (np.asarray(values, float) - self.y_mean_) / self.y_std_
            return torch.tensor(scaled, dtype=torch.float32).unsqueeze(1)
        codes = np.searchsorted(self.classes_, np.asarray(values))
        return torch.tensor(np.clip(codes, 0, len(self.classes_) - 1), dtype=torch.long)

    def _forward(self, dense: np.ndarray, cats: np.ndarray) -> np.ndarray:
        torch = _torch()
        with torch.no_grad():
            return self.net_(torch.from_numpy(dense), torch.from_numpy(cats)).numpy()

    def _outputs(self, logits: np.ndarray) -> np.ndarray:
        """Class probabilities (softmax of the network's outputs) or regression values."""
        if self.task == "regression":
            return logits[:, 0] * self.y_std_ + self.y_mean_
        logits = logits - logits.max(axis=1, keepdims=True)
        p = np.exp(logits)
        return p / p.sum(axis=1, keepdims=True)

    def predict_arrays(self, num: np.ndarray, codes: np.ndarray) -> np.ndarray:
        """``predict_proba`` (classification) or ``predict`` (regression) of the table given as
        its numeric columns and category codes (see ``_encode_arrays``)."""
        return self._outputs(self._forward(*self._encode_arrays(num, codes)))

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        """Class probabilities (softmax of the network's outputs)."""
        return self._outputs(self._forward(*self._encode(X)))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        """Labels (classification) or values (regression)."""
        if self.task == "regression":
            return self._outputs(self._forward(*self._encode(X)))
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def __getstate__(self) -> dict[str, Any]:
        # store the network's weights, not the module object, so pickles stay portable
        state = self.__dict__.copy()
        net = state.pop("net_", None)
        if net is not None:
            state["net_state_"] = {k: v.cpu().numpy() for k, v in net.state_dict().items()}
            state["n_out_"] = net.body[-1].out_features
            state["n_dense_"] = net.body[0].in_features - sum(
                e.embedding_dim for e in net.embeddings
            )
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        weights = state.pop("net_state_", None)
        self.__dict__.update(state)
        if weights is not None:
            torch = _torch()
            self.net_ = self._network(state["n_dense_"], state["n_out_"])
            # arrays read from shared memory (a Ray result) are read-only: the tensors copy them
            self.net_.load_state_dict({k: torch.tensor(v) for k, v in weights.items()})
            self.net_.eval()
