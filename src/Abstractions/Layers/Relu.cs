namespace Lockstep.Layers;

/// <summary>RELU: y = max(0, x), elementwise; dx = dy where x &gt; 0.</summary>
public sealed class Relu : Layer
{
    public Relu(IBackend backend, string name = "RELU") : base(backend, name) { }

    public override string Kind => "RELU";

    public override ITensor Forward(ITensor x)
    {
        var y = Backend.Relu(x);
        Remember(x);
        return y;
    }

    public override ITensor? Backward(ITensor dy, bool needDx) =>
        needDx ? Backend.ReluBackward(dy, Input()) : null;
}
