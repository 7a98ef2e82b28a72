// The artifact's sentencepiece vocabulary, and text framed as keras_hub packs it.
#pragma once

#include <sentencepiece_processor.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "reference.h"

// Loads ARTIFACT_DIR/tokenizer/vocabulary.spm into `tokenizer`; throws why it cannot.
inline void load_tokenizer(sentencepiece::SentencePieceProcessor& tokenizer, const std::string& dir) {
  const auto status = tokenizer.Load(dir + "/tokenizer/vocabulary.spm");
  if (!status.ok()) throw std::runtime_error(status.ToString());
}

// The pieces of `text` between the reference's framing ids (-1: none).
inline std::vector<int32_t> framed_ids(const sentencepiece::SentencePieceProcessor& tokenizer, const Reference& ref,
                                       const std::string& text) {
  std::vector<int> pieces;
  tokenizer.Encode(text, &pieces);
  std::vector<int32_t> ids;
  if (ref.start_id >= 0) ids.push_back(ref.start_id);
  ids.insert(ids.end(), pieces.begin(), pieces.end());
  if (ref.end_id >= 0) ids.push_back(ref.end_id);
  return ids;
}
