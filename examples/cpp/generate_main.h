// The program around a decoding engine, shared by the generation examples: tokenize with
// sentencepiece, frame the prompt, check its ids against keras_hub's, decode greedily,
// detokenize, and compare the tokens with Keras's greedy tokens.
//
//   PROGRAM ARTIFACT_DIR                        tokenize reference/generation.txt's text,
//                                               check the prompt ids and the greedy tokens
//                                               against keras_hub's and Keras's; exit 1 on
//                                               any difference
//   PROGRAM ARTIFACT_DIR "text" [MAX_NEW_TOKENS] generate and print
//
// Everything model-specific comes from ARTIFACT_DIR/reference/generation.txt (layout in
// export/references.py); the vocabulary is ARTIFACT_DIR/tokenizer/vocabulary.spm. What
// runs the graphs is the DecodingEngine `make_engine` returns.
#pragma once

#include <cstdlib>
#include <functional>
#include <iostream>
#include <memory>

#include "greedy_decoding.h"
#include "reference.h"
#include "tokenize.h"

using EngineFactory = std::function<std::unique_ptr<DecodingEngine>(const std::string& dir, const Reference& ref)>;

inline void print_ids(const char* label, const std::vector<int32_t>& ids) {
  std::cout << label << ":";
  for (int32_t id : ids) std::cout << " " << id;
  std::cout << "\n";
}

inline int generate_main(int argc, char** argv, const EngineFactory& make_engine) {
  if (argc < 2) {
    std::cerr << "usage: " << argv[0] << " ARTIFACT_DIR [TEXT [MAX_NEW_TOKENS]]\n";
    return 2;
  }
  const std::string dir = argv[1];
  Reference ref;
  try {
    ref = read_reference(dir + "/reference/generation.txt");
  } catch (const std::exception& error) {
    std::cerr << "error: " << error.what() << " (export an encoder-decoder model with a tokenizer, e.g. T5)\n";
    return 2;
  }
  const bool checking = argc < 3;
  const std::string text = checking ? ref.text : argv[2];
  const int max_new_tokens = argc > 3 ? std::atoi(argv[3]) : ref.max_new_tokens;
  if (max_new_tokens <= 0) {
    std::cerr << "error: MAX_NEW_TOKENS must be a positive number\n";
    return 2;
  }

  sentencepiece::SentencePieceProcessor tokenizer;
  std::vector<int32_t> prompt;
  try {
    load_tokenizer(tokenizer, dir);
    prompt = framed_ids(tokenizer, ref, text);
  } catch (const std::exception& error) {
    std::cerr << "error: " << error.what() << "\n";
    return 2;
  }
  const int64_t length = static_cast<int64_t>(prompt.size());
  print_ids("prompt ids", prompt);

  bool ok = true;
  if (checking && ref.inputs.at(ref.part("encoder_ids")).ints != prompt) {
    print_ids("keras_hub's", ref.inputs.at(ref.part("encoder_ids")).ints);
    std::cout << "prompt ids differ from keras_hub's: MISMATCH\n";
    ok = false;
  }

  std::vector<int32_t> generated;
  try {
    const std::unique_ptr<DecodingEngine> engine = make_engine(dir, ref);
    const IntBuffer ids{{1, length}, prompt}, mask{{1, length}, std::vector<int32_t>(prompt.size(), 1)};
    const CacheLayout layout{ref.cache_shape, ref.cache_axis};
    const DecoderIds special{ref.decoder_start_id, ref.decoder_end_id, ref.decoder_pad_id};
    generated = greedy(*engine, ids, mask, layout, max_new_tokens, special)[0];
  } catch (const std::exception& error) {
    std::cerr << "error: " << error.what() << "\n";
    return 2;
  }
  print_ids("generated ids", generated);

  // As the Python runtime decodes: the special ids dropped.
  std::vector<int> words;
  for (int32_t id : generated)
    if (id != ref.decoder_start_id && id != ref.decoder_end_id && id != ref.decoder_pad_id) words.push_back(id);
  std::string output;
  tokenizer.Decode(words, &output);
  std::cout << "generated text: " << output << "\n";

  if (checking) {
    const std::vector<int32_t>& want = ref.outputs.at("generated").ints;
    if (generated == want) {
      std::cout << "generated ids equal Keras's greedy tokens (" << want.size() << "): OK\n";
    } else {
      print_ids("Keras's", want);
      std::cout << "token ids differ from Keras's greedy tokens: MISMATCH\n";
      ok = false;
    }
  }
  return ok ? 0 : 1;
}
