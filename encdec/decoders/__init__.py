"""Decoders on the encoder contract: they map an encoder's feature maps (high to low resolution) to one map.

* ``UNetDecoder``: upsample, concatenate a skip connection, convolve, level by level;
* ``FPNDecoder``: a feature pyramid, each level convolved up to stride 4 and summed;
* ``DeepLabV3Decoder``: atrous spatial pyramid pooling of the coarsest map;
* ``DeepLabV3PlusDecoder``: atrous spatial pyramid pooling and one stride-4 skip;
* ``LinknetDecoder``: transposed-convolution upsampling, skip connections added;
* ``PSPDecoder``: pyramid pooling of the coarsest map;
* ``UNetPlusPlusDecoder``: nested, densely connected skip pathways;
* ``MAnetDecoder``: position attention on the coarsest map, fusion attention upwards;
* ``PANDecoder``: feature pyramid attention and global attention upsampling;
* ``UPerNetDecoder``: pyramid pooling and a feature pyramid fused at stride 4;
* ``SegformerDecoder``: one linear projection per map, fused at stride 4;
* ``DPTDecoder``: a transformer's blocks reassembled into a pyramid and fused.

Example:
    >>> from encdec.decoders import FPNDecoder
    >>> FPNDecoder([64, 128, 256, 512]).out_channels
    128
"""

from .deeplab import ASPP, DeepLabV3Decoder, DeepLabV3PlusDecoder
from .dpt import DPTDecoder, DPTFusionBlock, DPTReadout, DPTReassemble
from .fpn import FPNDecoder
from .linknet import LinknetBlock, LinknetDecoder
from .manet import MAnetDecoder, MFABlock, PABlock
from .pan import FPABlock, GAUBlock, PANDecoder
from .pspnet import PSPDecoder, PyramidPooling
from .segformer import PositionwiseLinear, SegformerDecoder
from .unet import UNetDecoder
from .unetplusplus import UNetPlusPlusDecoder
from .upernet import ChannelLayerNorm, UPerNetDecoder, UPerNetPooling

__all__ = ["ASPP", "ChannelLayerNorm", "DPTDecoder", "DPTFusionBlock", "DPTReadout", "DPTReassemble",
           "DeepLabV3Decoder", "DeepLabV3PlusDecoder", "FPABlock", "FPNDecoder", "GAUBlock", "LinknetBlock",
           "LinknetDecoder", "MAnetDecoder", "MFABlock", "PABlock", "PANDecoder", "PSPDecoder", "PositionwiseLinear",
           "PyramidPooling", "SegformerDecoder", "UNetDecoder", "UNetPlusPlusDecoder", "UPerNetDecoder",
           "UPerNetPooling"]
