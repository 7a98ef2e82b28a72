// Text in, text out, in C++: sentencepiece tokenizes, OpenVINO runs the ONNX graphs of an
// encoder-decoder artifact (T5), greedy_decoding.h decodes; usage and checks in
// generate_main.h.
//
// The graphs are ARTIFACT_DIR/onnx/<graph>.onnx, named by reference/generation.txt (their
// weights in onnx/weights.onnx.data beside them, which OpenVINO finds on its own).
#include <openvino/openvino.hpp>

#include "generate_main.h"

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
  OpenVinoEngine(const std::string& dir, const Reference& ref) : ref_(ref) {
    encoder_ = compile(core_, dir, ref.part("encoder"));
    cross_ = compile(core_, dir, ref.part("cross_cache"));
    step_ = compile(core_, dir, ref.part("step"));
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

  ov::Core core_;
  const Reference& ref_;
  ov::InferRequest encoder_, cross_, step_;
};

}  // namespace

int main(int argc, char** argv) {
  return generate_main(argc, argv, [](const std::string& dir, const Reference& ref) {
    return std::make_unique<OpenVinoEngine>(dir, ref);
  });
}
