// Text in, text out, in C++: sentencepiece tokenizes, OpenVINO runs the ONNX graphs of an
// encoder-decoder artifact (T5), greedy_decoding.h decodes.
//
//   t5_generate_openvino ARTIFACT_DIR          tokenize reference/generation.txt's text,
//                                              check the prompt ids and the greedy tokens
//                                              against keras_hub's and Keras's; exit 1 on
//                                              any difference
//   t5_generate_openvino ARTIFACT_DIR "text" [MAX_NEW_TOKENS]
//                                              generate and print
//
// Everything model-specific comes from ARTIFACT_DIR/reference/generation.txt (layout in
// export/references.py): the framing, the decoder start, end and pad ids, the name of
// each graph and tensor by the part it plays, the self cache's axes. The graphs are
// ARTIFACT_DIR/onnx/<graph>.onnx (their weights in onnx/weights.onnx.data beside them,
// which OpenVINO finds on its own); the vocabulary is ARTIFACT_DIR/tokenizer/vocabulary.spm.
#include <sentencepiece_processor.h>

#include <cstdlib>
#include <iostream>
#include <openvino/openvino.hpp>

#include "greedy_decoding.h"
#include "reference.h"

namespace {

template <typename T>
ov::Tensor view(ov::element::Type type, const Buffer<T>& buffer) {
  // OpenVINO reads inputs in place and does not write them.
  return ov::Tensor(type, ov::Shape(buffer.shape.begin(), buffer.shape.end()), const_cast<T*>(buffer.data.data()));
}

FloatBuffer copy_out(const ov::Tensor& tensor) {
  const ov::Shape shape = tensor.get_shape();
  const float* data = tensor.data<const float>();
  return {std::vector<int64_t>(shape.begin(), shape.end()), std::vector<float>(data, data + tensor.get_size())};
}

// The three graphs compiled for OpenVINO's CPU plugin, inputs and outputs by the names
// the reference gives each part.
class OpenVinoEngine : public DecodingEngine {
 public:
  OpenVinoEngine(ov::Core& core, const std::string& dir, const Reference& ref) : ref_(ref) {
    encoder_ = compile(core, dir, ref.part("encoder"));
    cross_ = compile(core, dir, ref.part("cross_cache"));
    step_ = compile(core, dir, ref.part("step"));
  }

  FloatBuffer encode(const IntBuffer& token_ids, const IntBuffer& mask) override {
    encoder_.set_tensor(ref_.part("encoder_ids"), view(ov::element::i32, token_ids));
    encoder_.set_tensor(ref_.part("encoder_mask"), view(ov::element::i32, mask));
    encoder_.infer();
    return copy_out(encoder_.get_tensor(ref_.part("encoder_hidden")));
  }

  FloatBuffer cross_cache(const FloatBuffer& hidden) override {
    cross_.set_tensor(ref_.part("cross_hidden"), view(ov::element::f32, hidden));
    cross_.infer();
    return copy_out(cross_.get_tensor(ref_.part("cross_kv")));
  }

  FloatBuffer step(const IntBuffer& mask, const IntBuffer& tokens, FloatBuffer& cache, int32_t index,
                   const FloatBuffer& cross) override {
    step_.set_tensor(ref_.part("step_mask"), view(ov::element::i32, mask));
    step_.set_tensor(ref_.part("step_ids"), view(ov::element::i32, tokens));
    step_.set_tensor(ref_.part("step_cache"), view(ov::element::f32, cache));
    step_.set_tensor(ref_.part("step_index"), ov::Tensor(ov::element::i32, ov::Shape{}, &index));
    step_.set_tensor(ref_.part("step_cross_kv"), view(ov::element::f32, cross));
    step_.infer();
    FloatBuffer next = copy_out(step_.get_tensor(ref_.part("next_cache")));
    if (next.shape != cache.shape) throw std::runtime_error("the decoding step changed the self cache's shape");
    cache.data.swap(next.data);
    return copy_out(step_.get_tensor(ref_.part("logits")));
  }

 private:
  static ov::InferRequest compile(ov::Core& core, const std::string& dir, const std::string& graph) {
    // f32 pinned: OpenVINO's CPU default may be bf16 on CPUs that have it.
    return core.compile_model(dir + "/onnx/" + graph + ".onnx", "CPU", ov::hint::inference_precision(ov::element::f32))
        .create_infer_request();
  }

  const Reference& ref_;
  ov::InferRequest encoder_, cross_, step_;
};

void print_ids(const char* label, const std::vector<int32_t>& ids) {
  std::cout << label << ":";
  for (int32_t id : ids) std::cout << " " << id;
  std::cout << "\n";
}

}  // namespace

int main(int argc, char** argv) {
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
  const auto status = tokenizer.Load(dir + "/tokenizer/vocabulary.spm");
  if (!status.ok()) {
    std::cerr << "error: " << status.ToString() << "\n";
    return 2;
  }
  std::vector<int> pieces;
  tokenizer.Encode(text, &pieces);
  std::vector<int32_t> prompt;
  if (ref.start_id >= 0) prompt.push_back(ref.start_id);
  prompt.insert(prompt.end(), pieces.begin(), pieces.end());
  if (ref.end_id >= 0) prompt.push_back(ref.end_id);
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
    ov::Core core;
    OpenVinoEngine engine(core, dir, ref);
    const IntBuffer ids{{1, length}, prompt}, mask{{1, length}, std::vector<int32_t>(prompt.size(), 1)};
    const CacheLayout layout{ref.cache_shape, ref.cache_axis};
    const DecoderIds special{ref.decoder_start_id, ref.decoder_end_id, ref.decoder_pad_id};
    generated = greedy(engine, ids, mask, layout, max_new_tokens, special)[0];
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
