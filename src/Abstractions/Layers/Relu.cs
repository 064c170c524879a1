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

    public override void Forward(ITensor x, ITensor y)
    {
        Backend.Relu(x, y);
        Remember(x);
    }

    public override ITensor? Backward(ITensor dy, bool needDx) =>
        needDx ? Backend.ReluBackward(dy, Input()) : null;

    public override void Backward(ITensor dy, ITensor? dx)
    {
        if (dx is not null) Backend.ReluBackward(dy, Input(), dx);
    }
}
