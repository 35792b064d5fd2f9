"""Character features of words: a character CNN and highway layers (Ouchi et al., ACL 2020, after
Ma and Hovy, 2016), and word embeddings whose pretrained rows stay fixed.

Character CNN, for a word of characters ``c_1 .. c_n`` (embedded as ``E[c_t]``, ``e`` dims)::

    u_t = W * [E[c_{t-h}]; ...; E[c_{t+h}]] + b     (F filters of width k = 2h + 1, zero beyond the word)
    char(word) = max_{1 <= t <= n} u_t               (F dims; 0 for a word without characters)

Highway layer (Srivastava et al., 2015), on ``x = [word vector; char(word)]``::

    g = sigmoid(W_g x + b_g);   y = g * relu(W_h x + b_h) + (1 - g) * x

Shapes: characters ``(N, W)`` (0 = padding), features ``(N, F)``.
"""

import torch
from torch import nn


class CharacterCNN(nn.Module):
    def __init__(self, num_characters, embed_dim, filters, kernel_width):
        super().__init__()
        self.output_dim = filters
        self.embed_characters = nn.Embedding(num_characters, embed_dim, padding_idx=0)
        self.conv = nn.Conv1d(embed_dim, filters, kernel_width, padding=kernel_width // 2)

    def forward(self, characters):
        """``characters`` (N, W) -> (N, filters): max over each word's character positions."""
        present = characters.ne(0)  # (N, W)
        convolved = self.conv(self.embed_characters(characters).transpose(1, 2))[..., :characters.size(1)]  # (N, F, W)
        convolved = convolved.masked_fill(~present.unsqueeze(1), float("-inf")).amax(-1)
        return convolved.masked_fill(~present.any(1, keepdim=True), 0.0)


class Highway(nn.Module):
    def __init__(self, dim, layers):
        super().__init__()
        self.transforms = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))
        self.gates = nn.ModuleList(nn.Linear(dim, dim) for _ in range(layers))

    def forward(self, x):
        for transform, gate in zip(self.transforms, self.gates):
            g = torch.sigmoid(gate(x))
            x = g * torch.relu(transform(x)) + (1 - g) * x
        return x


class PartlyPretrainedEmbedding(nn.Module):
    """Word ids ``< first_pretrained`` look up a trainable table (``trained``), the others a table
    of pretrained vectors (``pretrained``, frozen unless ``freeze`` is off): the optimizer never
    touches (or holds state for) the hundreds of thousands of fixed rows."""

    def __init__(self, num_words, first_pretrained, embed_dim, padding_idx, freeze=True):
        super().__init__()
        self.embedding_dim = embed_dim
        self.first_pretrained = first_pretrained
        self.trained = nn.Embedding(first_pretrained, embed_dim, padding_idx=padding_idx)
        self.pretrained = nn.Parameter(torch.zeros(num_words - first_pretrained, embed_dim), requires_grad=not freeze)

    def forward(self, ids):
        is_pretrained = ids >= self.first_pretrained
        trained = self.trained(ids.clamp(max=self.first_pretrained - 1))
        pretrained = self.pretrained[(ids - self.first_pretrained).clamp(min=0)]
        return torch.where(is_pretrained.unsqueeze(-1), pretrained, trained)
